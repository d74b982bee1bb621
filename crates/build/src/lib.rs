//! berth build: Dockerfile parsing, the build graph, the layer cache
