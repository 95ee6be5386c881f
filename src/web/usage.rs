//! The deployment page's usage chart, drawn on the server as SVG: the signed-in user's own
//! requests per hour (bars) and mean latency (line) for one deployment, last 24 hours.
//! Only the caller's own usage rows are read, so no ownership rule is involved.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::render::HtmlError;
use crate::app::App;
use crate::error::ErrorCode;
use crate::store::UsageRecord;

const HOUR_MS: i64 = 3_600_000;
const HOURS: i64 = 24;

/// The `sigil_session` cookie's value (the session itself is checked by `Accounts`).
fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == "sigil_session")
        .map(|(_, v)| v.trim())
}

pub async fn chart(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, HtmlError> {
    let token = session_token(&headers)
        .ok_or_else(|| HtmlError::new(ErrorCode::Unauthorized, "log in to see usage"))?
        .to_string();
    let now = app.ambient.now_ms();
    let svg = tokio::task::spawn_blocking(move || -> Result<String, HtmlError> {
        let (who, _) = app.accounts.session(&token)?;
        let rows = crate::gateway::meter::usage_of(&app.store, &who.user).map_err(|e| {
            tracing::error!(error = %e, "usage read failed");
            HtmlError::new(
                ErrorCode::Internal,
                "internal error; the server log has details",
            )
        })?;
        let mine: Vec<UsageRecord> = rows.into_iter().filter(|r| r.deployment == id).collect();
        Ok(render(&mine, now))
    })
    .await
    .map_err(|_| {
        HtmlError::new(
            ErrorCode::Internal,
            "internal error; the server log has details",
        )
    })??;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response())
}

/// Bars for requests, a polyline for mean latency, hour labels every 6 hours.
pub fn render(rows: &[UsageRecord], now_ms: i64) -> String {
    let end = now_ms - now_ms.rem_euclid(HOUR_MS);
    let start = end - (HOURS - 1) * HOUR_MS;
    let mut req = [0u64; HOURS as usize];
    let mut lat = [0f64; HOURS as usize];
    for r in rows {
        if r.hour < start || r.hour > end {
            continue;
        }
        let i = ((r.hour - start) / HOUR_MS) as usize;
        req[i] += r.requests;
        if r.requests > 0 {
            lat[i] = r.latency_ms_total as f64 / r.requests as f64;
        }
    }
    let (w, h, left, bottom, top) = (720.0, 220.0, 44.0, 28.0, 16.0);
    let plot_h = h - bottom - top;
    let slot = (w - left - 16.0) / HOURS as f64;
    let max_req = req.iter().copied().max().unwrap_or(0).max(1) as f64;
    let max_lat = lat.iter().copied().fold(0.0, f64::max).max(1.0);
    let total: u64 = req.iter().sum();
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Requests per hour, last 24 hours: {total} in total\">\
<rect width=\"{w}\" height=\"{h}\" fill=\"#161a21\"/>\
<text x=\"{left}\" y=\"12\" fill=\"#a3abb9\" font-size=\"11\" font-family=\"sans-serif\">requests/hour (bars, max {max_req}) · mean latency ms (line, max {max_lat:.0})</text>"
    );
    for (i, &n) in req.iter().enumerate() {
        let bh = n as f64 / max_req * plot_h;
        let x = left + i as f64 * slot + 2.0;
        let y = top + plot_h - bh;
        s.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#7c6cf2\"><title>{n} requests</title></rect>",
            slot - 4.0
        ));
        if i % 6 == 0 {
            let hour = ((start + i as i64 * HOUR_MS) / HOUR_MS).rem_euclid(24);
            s.push_str(&format!(
                "<text x=\"{x:.1}\" y=\"{:.1}\" fill=\"#a3abb9\" font-size=\"11\" font-family=\"sans-serif\">{hour:02}:00</text>",
                h - 8.0
            ));
        }
    }
    let points: Vec<String> = lat
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            format!(
                "{:.1},{:.1}",
                left + i as f64 * slot + slot / 2.0,
                top + plot_h - l / max_lat * plot_h
            )
        })
        .collect();
    s.push_str(&format!(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#5fd39a\" stroke-width=\"2\"/>\
<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#2a303b\"/></svg>",
        points.join(" "),
        top + plot_h,
        w - 16.0,
        top + plot_h
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_follow_the_hours() {
        let now = 100 * HOUR_MS + 5;
        let row = |hour: i64, requests| UsageRecord {
            user: "u".into(),
            deployment: "d".into(),
            hour: hour * HOUR_MS,
            requests,
            latency_ms_total: requests * 20,
            ..Default::default()
        };
        let svg = render(&[row(100, 4), row(99, 2), row(10, 99)], now);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("6 in total"), "old hours are left out: {svg}");
        assert!(svg.contains("<title>4 requests</title>"));
        assert_eq!(svg.matches("<rect x=").count(), 24);
        let empty = render(&[], now);
        assert!(empty.contains("0 in total"));
    }
}
