//! The GraphiQL page of the unified endpoint and of every BFF that allows it, with its
//! scripts and styles embedded in the binary (`gateway/assets/graphiql`): no request goes
//! to any other host, so it works on air-gapped networks. The explorer plugin is on,
//! and the headers a user sets in the editor are sent with each request.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// Part of every asset URL, so that a browser never mixes cached files of two versions.
pub(super) const VERSION: &str = "3.9.0";

/// Where the assets are served; the page refers to them under it.
pub(super) fn assets_route() -> String {
    format!("/graphiql/{VERSION}/{{file}}")
}

const PAGE: &str = include_str!("graphiql.html");

/// The page; it posts to the URL it was loaded from.
pub(super) fn page() -> Response {
    Html(PAGE.replace("{{ASSETS}}", &format!("/graphiql/{VERSION}"))).into_response()
}

macro_rules! asset {
    ($file:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/graphiql/",
            $file
        ))
        .as_slice()
    };
}

/// One embedded file, cached by browsers for a year (the URL changes with the version).
pub(super) async fn asset(Path(file): Path<String>) -> Response {
    let (body, content_type): (&'static [u8], &str) = match file.as_str() {
        "graphiql.min.js" => (asset!("graphiql.min.js"), "text/javascript"),
        "graphiql.min.css" => (asset!("graphiql.min.css"), "text/css"),
        "react.production.min.js" => (asset!("react.production.min.js"), "text/javascript"),
        "react-dom.production.min.js" => (asset!("react-dom.production.min.js"), "text/javascript"),
        "plugin-explorer.umd.js" => (asset!("plugin-explorer.umd.js"), "text/javascript"),
        "plugin-explorer.css" => (asset!("plugin-explorer.css"), "text/css"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}
