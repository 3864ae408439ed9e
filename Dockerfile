# GlobeCo Portfolio Service image: build with the Rust toolchain, run on distroless.
#
#   docker build -t portfolio-service .
#   docker run --rm -p 8000:8000 -e PORTFOLIO_DATABASE_URL=postgres://... portfolio-service
#
# Needs BuildKit (the default builder since Docker 23; DOCKER_BUILDKIT=1 before that). There is
# no `# syntax=` line on purpose: it would pull the Dockerfile frontend from a registry, and
# the built-in frontend has everything this file uses.
#
# The base images are build arguments, so a machine without a registry can substitute local
# ones: scripts/build-image.sh imports a minimal glibc root file system made with debootstrap as
# RUNTIME_IMAGE and hands in a binary compiled on the host with BINARY_FROM=prebuilt.
#
# The runtime stage has no shell and no package manager: the binary is the only program in it,
# so the HEALTHCHECK calls the binary's own `healthcheck` subcommand.

ARG RUST_IMAGE=rust:1.95-slim-bookworm
# glibc, libgcc and CA certificates, no shell; uid/gid 65532 ("nonroot").
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# The stage /out/portfolio-service and /out/data come from: "build" compiles here, "prebuilt"
# takes `portfolio-service` and an empty `data/` from the root of the build context.
ARG BINARY_FROM=build

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# The slim toolchain image already has gcc and libc headers, all that ring, zstd, mimalloc and
# the bundled SQLite compile against; TLS is rustls, so no OpenSSL.
COPY . .
# Cache mounts keep the registry and the target directory between builds on the same builder;
# the binary is copied out in the same step because the cached target is not part of the layer.
# Symbols are stripped: a third of the binary, and panics still print their message.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked -p portfolio-service \
 && install -D -m 0755 target/release/portfolio-service /out/portfolio-service \
 && install -d -m 0750 /out/data

FROM scratch AS prebuilt
COPY portfolio-service /out/portfolio-service
COPY data /out/data

# hadolint ignore=DL3006
FROM ${BINARY_FROM} AS binary

FROM ${RUNTIME_IMAGE} AS runtime
LABEL org.opencontainers.image.title="portfolio-service" \
      org.opencontainers.image.description="GlobeCo Portfolio Service" \
      org.opencontainers.image.licenses="MIT"
COPY --from=binary /out/portfolio-service /usr/local/bin/portfolio-service
# Only for the embedded SQLite default; production points PORTFOLIO_DATABASE_URL at PostgreSQL.
COPY --from=binary --chown=65532:65532 /out/data /data
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
