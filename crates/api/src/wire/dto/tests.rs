use super::*;
use serde_json::json;

const LIMIT: NameLimit = NameLimit(16);

// The parsers under the limit most tests do not care about (local items shadow the glob).
fn parse_new_body(body: Body) -> Parsed<NewPortfolio> {
    super::parse_new_body(body, LIMIT)
}
fn parse_bulk_body(body: Body) -> Parsed<Vec<NewPortfolio>> {
    super::parse_bulk_body(body, LIMIT)
}
fn parse_update_body(body: Body) -> Parsed<Update> {
    super::parse_update_body(body, LIMIT)
}

#[test]
fn a_name_over_the_byte_limit_is_string_too_long_in_every_body() {
    let at_limit = "é".repeat(8); // 16 bytes, 8 characters
    assert_eq!(parse_new_body(Body::Json(json!({"name": at_limit}))).unwrap().name, at_limit);
    let over = format!("{at_limit}x");
    let expected = |loc: Value| {
        json!([{"type": "string_too_long", "loc": loc, "msg": "String should have at most 16 bytes",
            "input": over, "ctx": {"max_length": 16}}])
    };
    assert_eq!(issues(parse_new_body(Body::Json(json!({"name": over})))), expected(json!(["body", "name"])));
    assert_eq!(
        issues(parse_bulk_body(Body::Json(json!([{"name": "ok"}, {"name": over}])))),
        expected(json!(["body", 1, "name"]))
    );
    let update = json!({"portfolioId": "x", "name": over, "version": 1});
    assert_eq!(issues(parse_update_body(Body::Json(update))), expected(json!(["body", "name"])));
}

fn issues(result: Parsed<impl std::fmt::Debug>) -> Value {
    serde_json::to_value(result.expect_err("invalid")).unwrap()
}

#[test]
fn a_missing_name_reports_the_whole_object_as_input() {
    assert_eq!(
        issues(parse_new_body(Body::Json(json!({})))),
        json!([{"type": "missing", "loc": ["body", "name"], "msg": "Field required", "input": {}}])
    );
}

#[test]
fn a_missing_or_null_body_is_one_missing_issue() {
    let expected = json!([{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}]);
    assert_eq!(issues(parse_new_body(Body::Missing)), expected);
    assert_eq!(issues(parse_bulk_body(Body::Missing)), expected);
}

#[test]
fn every_failing_field_is_reported_in_field_order() {
    let body = json!({"version": 1.5, "dateCreated": "nope", "name": 7});
    let reported = issues(parse_new_body(Body::Json(body)));
    let locs: Vec<_> = reported.as_array().unwrap().iter().map(|i| i["loc"].clone()).collect();
    assert_eq!(locs, [json!(["body", "name"]), json!(["body", "dateCreated"]), json!(["body", "version"])]);
    assert_eq!(reported[2]["type"], "int_from_float");
}

#[test]
fn a_list_where_an_object_belongs_is_a_model_attributes_error() {
    let reported = issues(parse_new_body(Body::Json(json!([1]))));
    assert_eq!(reported[0]["type"], "model_attributes_type");
    assert_eq!(reported[0]["loc"], json!(["body"]));
    assert_eq!(reported[0]["input"], json!([1]));
}

#[test]
fn bulk_needs_a_list_and_reports_items_by_index() {
    let reported = issues(parse_bulk_body(Body::Json(json!({"name": "x"}))));
    assert_eq!(reported[0]["type"], "list_type");
    let reported = issues(parse_bulk_body(Body::Json(json!([{"name": "ok"}, {"name": 1}, 5]))));
    assert_eq!(reported[0]["loc"], json!(["body", 1, "name"]));
    assert_eq!(reported[1]["loc"], json!(["body", 2]));
    assert_eq!(reported[1]["type"], "model_attributes_type");
}

#[test]
fn raw_text_bodies_fail_the_type_check_with_the_text_as_input() {
    let reported = issues(parse_new_body(Body::Text("name=x".into())));
    assert_eq!(
        (reported[0]["type"].clone(), reported[0]["input"].clone()),
        (json!("model_attributes_type"), json!("name=x"))
    );
    let reported = issues(parse_bulk_body(Body::Text("x".into())));
    assert_eq!(reported[0]["type"], "list_type");
}

#[test]
fn updates_require_id_name_and_version_but_not_a_date() {
    let reported = issues(parse_update_body(Body::Json(json!({"name": "x"}))));
    let locs: Vec<_> = reported.as_array().unwrap().iter().map(|i| i["loc"].clone()).collect();
    assert_eq!(locs, [json!(["body", "portfolioId"]), json!(["body", "version"])]);
    let update = parse_update_body(Body::Json(json!({"portfolioId": "x", "name": "n", "version": "2"}))).unwrap();
    assert_eq!(update, Update { name: "n".into(), date_created: None, version: 2 });
}

#[test]
fn null_optional_fields_mean_not_supplied_and_unknown_fields_are_ignored() {
    let parsed =
        parse_new_body(Body::Json(json!({"name": "", "dateCreated": null, "version": null, "portfolioId": "x"})))
            .unwrap();
    assert_eq!(parsed, NewPortfolio { name: String::new(), date_created: None, version: None });
}
