# syntax=docker/dockerfile:1
# GlobeCo Portfolio Service image: build with the Rust toolchain, run on distroless.
#
#   docker build -t portfolio-service .
#   docker run --rm -p 8000:8000 -e PORTFOLIO_DATABASE_URL=postgres://... portfolio-service
#
# The runtime stage has no shell and no package manager: the binary is the only program in it,
# so the HEALTHCHECK calls the binary's own `healthcheck` subcommand.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# The slim toolchain image already has gcc and libc headers, all that ring, zstd, mimalloc and
# the bundled SQLite compile against; TLS is rustls, so no OpenSSL.
COPY . .
# Cache mounts keep the registry and the target directory between builds on the same builder;
# the binary is copied out in the same step because the cached target is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p portfolio-service \
 && install -D -m 0755 target/release/portfolio-service /out/portfolio-service \
 && install -d -m 0750 /out/data

# glibc, libgcc and CA certificates, no shell; uid/gid 65532 ("nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="portfolio-service" \
      org.opencontainers.image.description="GlobeCo Portfolio Service" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /out/portfolio-service /usr/local/bin/portfolio-service
# Only for the embedded SQLite default; production points PORTFOLIO_DATABASE_URL at PostgreSQL.
COPY --from=build --chown=65532:65532 /out/data /data
ENV PORTFOLIO_HOST=0.0.0.0 \
    PORTFOLIO_PORT=8000 \
    PORTFOLIO_DATA_DIR=/data
# Numeric, so Kubernetes' runAsNonRoot can verify it without resolving a user name.
USER 65532:65532
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/portfolio-service", "healthcheck", "--timeout", "2s"]
ENTRYPOINT ["/usr/local/bin/portfolio-service"]
CMD ["serve"]
