# syntax=docker/dockerfile:1
# kbo-import: the Restate endpoint serving the KboImport workflow.
#   docker build -t kbo-import .
#   docker run -p 9080:9080 -v kbo-data:/data kbo-import                        # /data/kbo.duckdb
#   docker run -p 9080:9080 -v kbo-data:/data -e MOTHERDUCK_TOKEN=... kbo-import  # md:kbo

# The test suite builds this file with its own binary in place of the build stage
# (`podman build --build-context build=<dir>`, tests/suite/image.rs); scripts/images.sh makes the
# two base images from Debian's packages where no registry is reachable.

# --- build ---------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src
# DuckDB's release library for the pinned version, as the checkout links it (.cargo/config.toml,
# tools/duckdb/package-lock.json pins its integrity): installed with Debian's npm.
RUN apt-get update && apt-get install -y --no-install-recommends npm && rm -rf /var/lib/apt/lists/*
COPY tools/duckdb/package.json tools/duckdb/package-lock.json tools/duckdb/
RUN npm ci --prefix tools/duckdb --no-audit --no-fund --loglevel=error \
 && cp tools/duckdb/node_modules/@duckdb/node-bindings-linux-x64/libduckdb.so /usr/local/lib/ \
 && ldconfig
# Dependencies first, in their own layer.
COPY .cargo .cargo
COPY build build
COPY Cargo.toml Cargo.lock build.rs ./
# The workspace's test and benchmark support is not built: its manifest and empty targets only.
COPY testkit/Cargo.toml testkit/build.rs testkit/
RUN mkdir -p src testkit/src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && echo 'fn main() {}' > testkit/src/main.rs && touch testkit/src/lib.rs \
 && cargo build --locked -p kbo-import \
 && rm -rf src
COPY src ./src
# The project's one build profile (dev, dependencies optimised), as CI builds it.
RUN touch src/main.rs src/lib.rs && cargo build --locked -p kbo-import \
 && cp target/debug/kbo-import /usr/local/bin/kbo-import
# MotherDuck's DuckDB extension for the pinned DuckDB, installed now so that the service never
# downloads it at run time. The folder is made here: the build stage has no user `kbo` (DuckDB
# refuses a HOME that does not exist). `--build-arg MOTHERDUCK_EXTENSION=skip` builds without
# the internet; the image then serves local files only, and a MotherDuck database is refused
# with `missing_extension`, naming `kbo-import install-extensions`.
ARG MOTHERDUCK_EXTENSION=install
RUN mkdir -p /home/kbo/.duckdb \
 && if [ "$MOTHERDUCK_EXTENSION" = skip ]; then \
      echo "built without MotherDuck's extension (MOTHERDUCK_EXTENSION=skip)" > /home/kbo/.duckdb/README; \
    else HOME=/home/kbo kbo-import install-extensions; fi

# --- run -----------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --create-home --home-dir /home/kbo kbo \
 && mkdir -p /data && chown kbo:kbo /data
COPY --from=build /usr/local/lib/libduckdb.so /usr/local/lib/libduckdb.so
RUN ldconfig
COPY --from=build /usr/local/bin/kbo-import /usr/local/bin/kbo-import
COPY --from=build --chown=kbo:kbo /home/kbo/.duckdb /home/kbo/.duckdb
USER kbo
# The working directory holds the default local database (kbo.duckdb): KBO_DATABASE is left
# unset so that a MOTHERDUCK_TOKEN alone selects MotherDuck, as the README's table says.
WORKDIR /data
ENV PORT=9080 \
    KBO_WORK_DIR=/data/work \
    RUST_LOG=info
EXPOSE 9080
VOLUME ["/data"]
ENTRYPOINT ["kbo-import"]
CMD ["serve"]
