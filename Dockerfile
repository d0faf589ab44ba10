# Builds the single `postino` binary. Queries are checked against the
# committed .sqlx/ data, so the build needs no database.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
ENV SQLX_OFFLINE=true
RUN cargo build --release --locked --bin postino

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 postino
COPY --from=build /src/target/release/postino /usr/local/bin/postino
USER postino
EXPOSE 8080
ENTRYPOINT ["postino"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
