//! The HTML rendering of an invoice: one self-contained page (inline styles, no scripts, no
//! outside resources) showing the same content as the PDF. Every piece of text is escaped.

use std::fmt::Write;

use super::InvoiceDocument;

const STYLE: &str = "body{font-family:Helvetica,Arial,sans-serif;color:#1a1a1a;margin:0;background:#f4f4f4}\
main{max-width:800px;margin:24px auto;background:#fff;padding:40px 48px}\
header{display:flex;justify-content:space-between;align-items:flex-start;border-bottom:1px solid #ccc;padding-bottom:16px}\
h1{font-size:22px;margin:0}.doc{text-align:right}.doc h2{margin:0;font-size:22px}.muted{color:#6b6b6b}\
.badge{font-weight:bold;font-size:14px;margin-top:6px}.badge.voided{color:#bf1a1a}.badge.paid{color:#0d8033}\
.cols{display:flex;justify-content:space-between;gap:32px;margin-top:24px}\
h3{font-size:11px;letter-spacing:.05em;color:#6b6b6b;margin:0 0 6px}\
.cols p{margin:0 0 3px}dl{display:grid;grid-template-columns:auto auto;gap:3px 16px;margin:0}\
dt{color:#6b6b6b}dd{margin:0;text-align:right}.periods dl{grid-template-columns:max-content 1fr}.periods dd{text-align:left}\
table{width:100%;border-collapse:collapse;margin-top:24px}th{background:#f0f0f0;font-size:11px;color:#6b6b6b;text-align:left;padding:6px}\
td{padding:6px;border-bottom:1px solid #ddd;vertical-align:top}.num{text-align:right;white-space:nowrap}\
.detail{display:block;font-size:12px;color:#6b6b6b}\
.totals{margin:20px 0 0 auto;width:320px;column-gap:0}.totals dd{font-variant-numeric:tabular-nums;padding-left:16px}\
.totals .total{font-weight:bold;font-size:17px;color:#1a1a1a;border-top:1px solid #999;padding-top:6px;margin-top:4px}\
footer{margin-top:32px;border-top:1px solid #ddd;padding-top:8px;font-size:11px;color:#6b6b6b}";

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders the document as a complete HTML page.
pub fn render(doc: &InvoiceDocument) -> String {
    let e = escape;
    let mut html = String::with_capacity(8 * 1024);
    // Writing to a String cannot fail, so the results of `write!` are ignored.
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Invoice {number}</title><style>{STYLE}</style></head><body><main>\n\
         <header><h1>{issuer}</h1><div class=\"doc\"><h2>INVOICE</h2><div class=\"muted\">{number}</div>",
        number = e(&doc.number),
        issuer = e(&doc.issuer),
    );
    if let Some(badge) = doc.badge {
        let label = badge.label();
        let _ = write!(
            html,
            "<div class=\"badge {}\">{label}</div>",
            label.to_ascii_lowercase()
        );
    }
    html.push_str("</div></header>\n<div class=\"cols\"><section><h3>BILL TO</h3>");
    for (i, line) in doc.customer.iter().enumerate() {
        if i == 0 {
            let _ = write!(html, "<p><strong>{}</strong></p>", e(line));
        } else {
            let _ = write!(html, "<p>{}</p>", e(line));
        }
    }
    html.push_str("</section><section><h3>DETAILS</h3><dl>");
    for (label, value) in &doc.facts {
        let _ = write!(html, "<dt>{}</dt><dd>{}</dd>", e(label), e(value));
    }
    html.push_str("</dl></section></div>\n<section class=\"periods\" style=\"margin-top:20px\"><h3>BILLING PERIOD</h3><dl>");
    for (label, value) in &doc.periods {
        let _ = write!(html, "<dt>{}</dt><dd>{}</dd>", e(label), e(value));
    }
    let _ = write!(
        html,
        "</dl></section>\n<table><thead><tr><th>ITEM</th><th class=\"num\">UNITS</th>\
         <th class=\"num\">UNIT PRICE</th><th class=\"num\">AMOUNT ({})</th></tr></thead><tbody>",
        e(&doc.currency)
    );
    if doc.lines.is_empty() {
        html.push_str("<tr><td colspan=\"4\" class=\"muted\">No fees.</td></tr>");
    }
    for line in &doc.lines {
        let _ = write!(
            html,
            "\n<tr><td>{}<span class=\"detail\">{}</span></td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            e(&line.item),
            e(&line.detail),
            e(&line.units),
            e(&line.unit_price),
            e(&line.amount)
        );
    }
    html.push_str("</tbody></table>\n<dl class=\"totals\">");
    for row in &doc.totals {
        if row.total {
            let _ = write!(
                html,
                "<dt class=\"total\">{} ({})</dt><dd class=\"total\">{}</dd>",
                e(&row.label),
                e(&doc.currency),
                e(&row.amount)
            );
        } else {
            let _ = write!(
                html,
                "<dt>{}</dt><dd>{}</dd>",
                e(&row.label),
                e(&row.amount)
            );
        }
    }
    let _ = write!(
        html,
        "</dl>\n<footer>{} \u{b7} Invoice {} \u{b7} {}</footer>\n</main></body></html>\n",
        e(&doc.issuer),
        e(&doc.number),
        e(&doc.reference)
    );
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }
}
