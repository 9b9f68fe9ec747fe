//! The audit page's chart of key uses, counted by the store ([`byok_store::AuditStore::key_use_counts`]):
//! daily bars over 30 days, and the hours of one chosen day. Inline SVG drawn here (no script,
//! no CDN), with a text title per bar for screen readers and hover.

use maud::{Markup, PreEscaped, html};
use time::OffsetDateTime;

pub const REASONS: [&str; 3] = ["data", "probe", "restore"];
const COLOURS: [&str; 3] = ["#2f5d9b", "#8a8f98", "#1e7b45"];

/// What the reasons mean, in the words of the legend.
pub fn reason_words(reason: &str) -> &str {
    match reason {
        "data" => "serving your data",
        "probe" => "periodic check",
        "restore" => "restoration check",
        "onboard" => "setup check",
        "rotate" => "key rotation",
        "rekey" => "moving to a new key",
        other => other,
    }
}

/// Stacked bars: `buckets` bars of `width` seconds from `start`, one colour per reason;
/// `label(i)` under every `every`-th bar.
pub fn bars(
    title: &str,
    counts: &[(i64, String, i64)],
    start: i64,
    width: i64,
    buckets: usize,
    every: usize,
    label: impl Fn(i64) -> String,
) -> Markup {
    let mut per = vec![[0i64; 3]; buckets];
    for (at, reason, n) in counts {
        let Some(r) = REASONS.iter().position(|x| x == reason) else { continue };
        let Ok(i) = usize::try_from((at - start) / width) else { continue };
        if let Some(slot) = per.get_mut(i) {
            slot[r] = slot[r].saturating_add(*n);
        }
    }
    let max = per.iter().map(|c| c.iter().sum::<i64>()).max().unwrap_or(0).max(1);
    let (w, h, left, bottom) = (640.0_f64, 150.0_f64, 40.0_f64, 20.0_f64);
    let bar = (w - left) / buckets.max(1) as f64;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {w} {total}\" width=\"100%\" role=\"img\" aria-label=\"{title}\" xmlns=\"http://www.w3.org/2000/svg\">",
        total = h + bottom,
        title = html! { (title) }.into_string(),
    );
    svg.push_str(&format!("<text x=\"0\" y=\"10\">{max}</text><text x=\"0\" y=\"{h}\">0</text>"));
    for (i, c) in per.iter().enumerate() {
        let mut y = h;
        let x = left + i as f64 * bar;
        for (r, n) in c.iter().enumerate().filter(|(_, n)| **n > 0) {
            let height = (*n as f64 / max as f64 * (h - 12.0)).max(1.0);
            y -= height;
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{height:.1}\" fill=\"{fill}\"><title>{label}: {n} × {reason}</title></rect>",
                bw = (bar - 1.0).max(0.5),
                fill = COLOURS[r],
                label = label(start + i as i64 * width),
                reason = reason_words(REASONS[r]),
            ));
        }
        if i % every.max(1) == 0 {
            svg.push_str(&format!("<text x=\"{x:.1}\" y=\"{ty}\">{}</text>", label(start + i as i64 * width), ty = h + 15.0));
        }
    }
    svg.push_str("</svg>");
    html! {
        figure.card {
            (PreEscaped(svg))
            figcaption.legend {
                @for r in REASONS {
                    span { span class={ "swatch " (r) } {} (reason_words(r)) }
                }
            }
        }
    }
}

/// `12-07` for a day's bar.
pub fn month_day(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t).map(|t| format!("{:02}-{:02}", u8::from(t.month()), t.day())).unwrap_or_default()
}

/// `14h` for an hour's bar (UTC).
pub fn hour(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t).map(|t| format!("{:02}h", t.hour())).unwrap_or_default()
}
