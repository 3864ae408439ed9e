//! What each scenario sends, and what it prepares first.

use super::client::{Call, Connection, Endpoint};
use anyhow::Context;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// GET /api/v1/portfolio/{id}, ids cycling through the pool.
    GetById,
    /// GET /api/v2/portfolios?limit=50&offset=..., cycling through the first 20 pages.
    SearchPage,
    /// GET /api/v2/portfolios?limit=50&offset=..., offsets spread evenly at random over every
    /// page of the whole collection (0 to total - 50): deep pages as often as the first.
    PageRandom,
    /// GET /api/v2/portfolios?name=..., exact names from the pool.
    SearchName,
    /// POST /api/v2/portfolios with 10 uniquely named portfolios.
    Bulk10,
    /// 70% get by id, 20% search page, 10% create (v1 POST): reads with invalidating writes.
    Mixed,
    /// GET / on the bare hyper baseline (or any URL answering GET /).
    Baseline,
    /// GET /health: the service's whole HTTP stack, no storage.
    Health,
}

/// What a request was for, in recordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Read,
    Create,
    BulkCreate,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Create => "create",
            Self::BulkCreate => "bulk-create",
        }
    }
}

/// An answer to one request.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub kind: RequestKind,
    /// The portfolio id an acknowledged single create returned.
    pub created: Option<String>,
}

/// 2xx and 3xx count as success; anything else, or no answer, is an error.
pub fn response_ok(status: u16) -> bool {
    (200..400).contains(&status)
}

/// A prepared scenario: the base URL, the pool of existing portfolios, a unique run tag, and
/// every request target the scenario repeats, parsed once.
pub struct Target {
    pub scenario: Scenario,
    base: String,
    endpoint: Endpoint,
    ids: Vec<String>,
    names: Vec<String>,
    run_tag: String,
    sequence: AtomicU64,
    /// The highest offset `PageRandom` asks for: the last full page of the collection.
    deepest_offset: u64,
    /// `GET /api/v1/portfolio/{id}` for each pooled id.
    by_id: Vec<String>,
    /// The first 20 search pages.
    pages: Vec<String>,
    /// `GET /api/v2/portfolios?name=...` for each pooled name (or one that matches nothing).
    by_name: Vec<String>,
    root: String,
    health: String,
    create_v1: String,
    create_v2: String,
}

impl Target {
    pub async fn prepare(
        client: &reqwest::Client,
        scenario: Scenario,
        base: &str,
        pool: usize,
    ) -> anyhow::Result<Self> {
        let endpoint = Endpoint::resolve(base).await?;
        let base = base.trim_end_matches('/').to_owned();
        let run_tag = format!("bench-{}-{}", std::process::id(), unix_seconds());
        let mut target = Self {
            scenario,
            base,
            ids: Vec::new(),
            names: Vec::new(),
            run_tag,
            sequence: AtomicU64::new(0),
            deepest_offset: 0,
            by_id: Vec::new(),
            pages: (0..20)
                .map(|page| endpoint.path(&format!("/api/v2/portfolios?limit=50&offset={}", page * 50)))
                .collect(),
            by_name: Vec::new(),
            root: endpoint.path("/"),
            health: endpoint.path("/health"),
            create_v1: endpoint.path("/api/v1/portfolios"),
            create_v2: endpoint.path("/api/v2/portfolios"),
            endpoint,
        };
        if !matches!(scenario, Scenario::Baseline | Scenario::Health) {
            target.fill_pool(client, pool.max(1)).await?;
        }
        if scenario == Scenario::PageRandom {
            target.deepest_offset = target.total(client).await?.saturating_sub(PAGE_SIZE);
        }
        target.by_id = target.ids.iter().map(|id| target.endpoint.path(&format!("/api/v1/portfolio/{id}"))).collect();
        target.by_name =
            target.names.iter().map(|name| target.endpoint.path(&format!("/api/v2/portfolios?name={name}"))).collect();
        if target.by_name.is_empty() {
            target.by_name.push(target.endpoint.path("/api/v2/portfolios?name=none"));
        }
        Ok(target)
    }

    /// A connection of its own for one worker.
    pub fn connection(&self) -> Connection {
        Connection::new(self.endpoint.clone())
    }

    /// Reads up to `pool` existing portfolios; creates the shortfall in bulk.
    async fn fill_pool(&mut self, client: &reqwest::Client, pool: usize) -> anyhow::Result<()> {
        let url = format!("{}/api/v2/portfolios?limit={}&fields=portfolioId,name", self.base, pool.min(1000));
        let page: Value = client.get(&url).send().await.context("reading the portfolio pool")?.json().await?;
        for p in page["portfolios"].as_array().into_iter().flatten() {
            self.ids.push(p["portfolioId"].as_str().unwrap_or_default().to_owned());
            self.names.push(p["name"].as_str().unwrap_or_default().to_owned());
        }
        while self.ids.len() < pool {
            let batch: Vec<Value> = (0..(pool - self.ids.len()).min(100))
                .map(|i| json!({ "name": format!("{}-seed-{}-{i}", self.run_tag, self.ids.len()) }))
                .collect();
            let created: Value = client
                .post(format!("{}/api/v2/portfolios", self.base))
                .json(&batch)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .context("seeding portfolios")?
                .json()
                .await?;
            for p in created.as_array().into_iter().flatten() {
                self.ids.push(p["portfolioId"].as_str().unwrap_or_default().to_owned());
                self.names.push(p["name"].as_str().unwrap_or_default().to_owned());
            }
        }
        // Search terms allow only letters, digits, spaces, '-' and '_'; keep them URL-encoded.
        self.names.retain(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || " -_".contains(c)));
        for name in &mut self.names {
            *name = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
        }
        Ok(())
    }

    /// How many portfolios the service holds (`totalElements` of an unfiltered search).
    async fn total(&self, client: &reqwest::Client) -> anyhow::Result<u64> {
        let url = format!("{}/api/v2/portfolios?limit=1", self.base);
        let page: Value = client.get(&url).send().await.context("counting the portfolios")?.json().await?;
        page["pagination"]["totalElements"].as_u64().context("no pagination.totalElements in the search answer")
    }

    /// Sends the next request of this scenario on `connection`; `Ok` when an answer arrived.
    pub async fn send(&self, connection: &mut Connection) -> anyhow::Result<Answer> {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let pick = |items: &[String]| -> usize { (n as usize).wrapping_mul(7919) % items.len() };
        // Targets and bodies made for this request only (the others are prepared targets).
        let (path, json);
        let (kind, call) = match self.scenario {
            Scenario::Baseline => (RequestKind::Read, Call::get(&self.root)),
            Scenario::Health => (RequestKind::Read, Call::get(&self.health)),
            Scenario::GetById => (RequestKind::Read, Call::get(&self.by_id[pick(&self.by_id)])),
            Scenario::SearchPage => (RequestKind::Read, Call::get(&self.pages[(n % 20) as usize])),
            Scenario::PageRandom => {
                let offset = spread(n) % (self.deepest_offset + 1);
                path = self.endpoint.path(&format!("/api/v2/portfolios?limit={PAGE_SIZE}&offset={offset}"));
                (RequestKind::Read, Call::get(&path))
            }
            Scenario::SearchName => (RequestKind::Read, Call::get(&self.by_name[pick(&self.by_name)])),
            Scenario::Bulk10 => {
                let batch: Vec<Value> =
                    (0..10).map(|i| json!({ "name": format!("{}-{n}-{i}", self.run_tag) })).collect();
                json = serde_json::to_vec(&batch)?;
                (RequestKind::BulkCreate, Call::post(&self.create_v2, &json, false))
            }
            Scenario::Mixed => match n % 10 {
                0 => {
                    json = serde_json::to_vec(&json!({ "name": format!("{}-{n}", self.run_tag) }))?;
                    (RequestKind::Create, Call::post(&self.create_v1, &json, true))
                }
                1 | 2 => (RequestKind::Read, Call::get(&self.pages[(n % 20) as usize])),
                _ => (RequestKind::Read, Call::get(&self.by_id[pick(&self.by_id)])),
            },
        };
        let reply = connection.send(&call).await?;
        // The id of an acknowledged single create, so a recording can check it was kept.
        let created = (kind == RequestKind::Create && response_ok(reply.status))
            .then(|| {
                let body = reply.body.as_deref()?;
                serde_json::from_slice::<Value>(body).ok()?["portfolioId"].as_str().map(str::to_owned)
            })
            .flatten();
        Ok(Answer { status: reply.status, kind, created })
    }

    /// The cache's hit and miss counters, when the service reports them.
    pub async fn cache_counters(&self, client: &reqwest::Client) -> Option<(u64, u64)> {
        if matches!(self.scenario, Scenario::Baseline | Scenario::Health) {
            return None;
        }
        let health: Value =
            client.get(format!("{}/health/detailed", self.base)).send().await.ok()?.json().await.ok()?;
        let cache = &health["checks"]["cache"];
        Some((cache["hits"].as_u64()?, cache["misses"].as_u64()?))
    }
}

/// The page size of the paging scenarios (the original's default).
const PAGE_SIZE: u64 = 50;

/// Request numbers scattered over all of `u64` (splitmix64's finaliser): offsets drawn from it
/// are uniform and differ between neighbouring requests, yet every run asks the same ones.
fn spread(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn random_offsets_reach_both_ends_of_the_collection_and_no_further() {
        let deepest = 9_950;
        let offsets: Vec<u64> = (0..20_000).map(|n| spread(n) % (deepest + 1)).collect();
        assert!(offsets.iter().all(|&o| o <= deepest));
        assert!(offsets.iter().any(|&o| o < 100) && offsets.iter().any(|&o| o > deepest - 100));
        let deep_half = offsets.iter().filter(|&&o| o > deepest / 2).count();
        assert!((9_000..11_000).contains(&deep_half), "about half are deep pages: {deep_half}");
    }
}
