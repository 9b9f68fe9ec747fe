//! The customer guide, served by the console itself at `/console/guide` (so that tickets,
//! emails and the overview link to a page the customer can open at 2 a.m., not to a path in a
//! repository): `docs/customer-guide.md` rendered once with pulldown-cmark, every numbered step
//! anchored as `#step-N` and every section as `#<its words>`. Public: it holds no tenant's data.

use std::sync::OnceLock;

use maud::{Markup, PreEscaped, html};
use pulldown_cmark::{Options, Parser, html::push_html};

use super::layout;

/// The guide as the repository carries it; the console serves this text, not a copy.
const SOURCE: &str = include_str!("../../../../docs/customer-guide.md");

pub async fn page(axum::extract::State(state): axum::extract::State<crate::state::AppState>) -> Markup {
    static RENDERED: OnceLock<String> = OnceLock::new();
    let rendered = RENDERED.get_or_init(|| render(SOURCE));
    layout::bare(
        &state.product_name,
        "Customer guide",
        html! {
            p { a href="/console" { "Back to the console" } }
            article.guide { (PreEscaped(brand(rendered, &state.product_name))) }
        },
    )
}

/// The guide under the deployment's product name (`--product-name`): the word "byok" where it
/// names the product in prose becomes `product` (escaped). Code keeps it: `byok tenant add` is the
/// provider's command and `byok-key-management` a real role's name, whatever the product is
/// called.
fn brand(html: &str, product: &str) -> String {
    const WORD: &str = "byok";
    if product == WORD {
        return html.to_string();
    }
    let product = maud::html! { (product) }.into_string();
    let mut out = String::with_capacity(html.len() + 256);
    let mut in_code = 0usize;
    let mut rest = html;
    while !rest.is_empty() {
        if let Some(tag_end) = rest.strip_prefix('<').and_then(|t| t.find('>')) {
            let tag = &rest[..tag_end + 2];
            match tag {
                "<code>" | "<pre>" => in_code += 1,
                "</code>" | "</pre>" => in_code = in_code.saturating_sub(1),
                _ if tag.starts_with("<code ") || tag.starts_with("<pre ") => in_code += 1,
                _ => {}
            }
            out.push_str(tag);
            rest = &rest[tag.len()..];
            continue;
        }
        let before = out.chars().last();
        let standalone = |c: Option<char>| !c.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '.'));
        if in_code == 0
            && rest.starts_with(WORD)
            && standalone(before)
            && (standalone(rest[WORD.len()..].chars().next()) || rest[WORD.len()..].starts_with(". "))
        {
            out.push_str(&product);
            rest = &rest[WORD.len()..];
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Markdown to HTML with anchors: a list item `N. …` starts with `<a id="step-N">`, a `## Title`
/// gets `{#title}`. The guide is the project's own text, so its inline HTML is trusted.
fn render(markdown: &str) -> String {
    let mut anchored = String::with_capacity(markdown.len() + 1024);
    for line in markdown.lines() {
        let step = line.split_once(". ").filter(|(n, _)| !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()));
        match (step, line.strip_prefix("## ")) {
            (Some((n, rest)), _) => anchored.push_str(&format!("{n}. <a id=\"step-{n}\"></a>{rest}")),
            (None, Some(title)) => anchored.push_str(&format!("## {title} {{#{}}}", slug(title))),
            (None, None) => anchored.push_str(line),
        }
        anchored.push('\n');
    }
    let mut out = String::with_capacity(anchored.len() * 2);
    push_html(&mut out, Parser::new_ext(&anchored, Options::ENABLE_TABLES | Options::ENABLE_HEADING_ATTRIBUTES));
    out
}

fn slug(title: &str) -> String {
    title.to_ascii_lowercase().split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_restoration_step_and_section_has_an_anchor() {
        let html = render(SOURCE);
        for n in 1..=13 {
            assert!(html.contains(&format!("<a id=\"step-{n}\"></a>")), "step {n}: {html}");
        }
        assert!(html.contains("<h2 id=\"restoring-access\">Restoring access</h2>"), "{html}");
        assert!(html.contains("<table>") && html.contains("<code>alias/byok-&lt;your tenant id&gt;</code>"), "{html}");
        // Step 10 continues on indented lines: they stay inside its list item.
        assert!(html.contains("Cancel key deletion"), "{html}");
    }

    #[test]
    fn the_product_name_replaces_byok_in_prose_and_never_in_code() {
        let html = brand(&render(SOURCE), "Acme <Cloud>");
        assert!(html.contains("Acme &lt;Cloud&gt; customer guide"), "{html}");
        assert!(html.contains("Acme &lt;Cloud&gt; sees it"), "{html}");
        assert!(html.contains("<code>byok tenant add</code>") && html.contains("<code>byok-key-management</code>"), "{html}");
        assert!(html.contains("alias/byok-"), "{html}");
        let prose: String = html.split("<code>").map(|part| part.split_once("</code>").map_or(part, |(_, after)| after)).collect();
        assert!(!prose.contains(" byok ") && !prose.contains(">byok "), "no product-name byok left in prose: {prose}");
        assert_eq!(brand("<p>byok</p>", "byok"), "<p>byok</p>");
    }
}
