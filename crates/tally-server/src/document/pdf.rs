//! The PDF rendering of an invoice: A4 pages in Helvetica (a standard font, so nothing is
//! embedded), text left uncompressed and extractable, the fee table continued on further pages
//! when it does not fit on one.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use super::helvetica::{Face, encode, fit};
use super::{Badge, InvoiceDocument};

const PAGE_WIDTH: f32 = 595.28;
const PAGE_HEIGHT: f32 = 841.89;
const LEFT: f32 = 50.0;
const RIGHT: f32 = PAGE_WIDTH - 50.0;
const TOP: f32 = PAGE_HEIGHT - 50.0;
/// Nothing but the footer goes below this line.
const BOTTOM: f32 = 70.0;

/// Right edges of the table's number columns, and the item column's width.
const UNITS_RIGHT: f32 = 380.0;
const PRICE_RIGHT: f32 = 462.0;
const AMOUNT_RIGHT: f32 = RIGHT;
const ITEM_WIDTH: f32 = 255.0;

const TEXT: f32 = 0.1;
const MUTED: f32 = 0.42;
const RULE: f32 = 0.8;
const BAND: f32 = 0.94;

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

fn font_name(face: Face) -> Name<'static> {
    match face {
        Face::Regular => REGULAR,
        Face::Bold => BOLD,
    }
}

/// Page contents being laid out, top to bottom.
struct Layout {
    pages: Vec<Content>,
    y: f32,
}

impl Layout {
    fn new() -> Self {
        Layout {
            pages: vec![Content::new()],
            y: TOP,
        }
    }

    fn page(&mut self) -> &mut Content {
        if self.pages.is_empty() {
            self.pages.push(Content::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn new_page(&mut self) {
        self.pages.push(Content::new());
        self.y = TOP;
    }

    /// Starts a new page unless `height` points still fit above the footer.
    fn ensure(&mut self, height: f32) -> bool {
        if self.y - height < BOTTOM {
            self.new_page();
            return true;
        }
        false
    }

    fn text_at(&mut self, x: f32, y: f32, face: Face, size: f32, gray: f32, encoded: &[u8]) {
        self.page()
            .set_fill_gray(gray)
            .begin_text()
            .set_font(font_name(face), size)
            .next_line(x, y)
            .show(Str(encoded))
            .end_text();
    }

    /// Writes text starting at `x` on the baseline `y`, cut to `max` points.
    fn text(&mut self, x: f32, y: f32, style: (Face, f32, f32), text: &str, max: f32) {
        let (face, size, gray) = style;
        let encoded = fit(encode(text), face, size, max);
        self.text_at(x, y, face, size, gray, &encoded);
    }

    /// Writes text ending at `right` on the baseline `y`.
    fn text_right(&mut self, right: f32, y: f32, style: (Face, f32, f32), text: &str) {
        let (face, size, gray) = style;
        let encoded = encode(text);
        let x = right - face.width(&encoded, size);
        self.text_at(x, y, face, size, gray, &encoded);
    }

    fn rule(&mut self, from: f32, to: f32, y: f32, width: f32) {
        self.rule_gray(from, to, y, width, RULE);
    }

    fn rule_gray(&mut self, from: f32, to: f32, y: f32, width: f32, gray: f32) {
        self.page()
            .set_stroke_gray(gray)
            .set_line_width(width)
            .move_to(from, y)
            .line_to(to, y)
            .stroke();
    }

    fn band(&mut self, y: f32, height: f32) {
        self.page()
            .set_fill_gray(BAND)
            .rect(LEFT, y, RIGHT - LEFT, height)
            .fill_nonzero();
    }
}

const TITLE: (Face, f32, f32) = (Face::Bold, 18.0, TEXT);
const HEADING: (Face, f32, f32) = (Face::Bold, 8.0, MUTED);
const BODY: (Face, f32, f32) = (Face::Regular, 10.0, TEXT);
const BODY_BOLD: (Face, f32, f32) = (Face::Bold, 10.0, TEXT);
const SMALL: (Face, f32, f32) = (Face::Regular, 8.0, MUTED);

fn header(layout: &mut Layout, doc: &InvoiceDocument) {
    let y = layout.y - 18.0;
    layout.text(LEFT, y, TITLE, &doc.issuer, 300.0);
    layout.text_right(RIGHT, y, (Face::Bold, 20.0, TEXT), "INVOICE");
    layout.text_right(RIGHT, y - 16.0, (Face::Regular, 10.0, MUTED), &doc.number);
    if let Some(badge) = doc.badge {
        let (r, g, b) = match badge {
            Badge::Voided => (0.75, 0.1, 0.1),
            Badge::Paid => (0.05, 0.5, 0.2),
        };
        let encoded = encode(badge.label());
        let size = 12.0;
        let x = RIGHT - Face::Bold.width(&encoded, size);
        layout
            .page()
            .set_fill_rgb(r, g, b)
            .begin_text()
            .set_font(BOLD, size)
            .next_line(x, y - 34.0)
            .show(Str(&encoded))
            .end_text();
    }
    layout.y = y - 44.0;
    layout.rule(LEFT, RIGHT, layout.y, 0.75);
    layout.y -= 26.0;
}

fn parties(layout: &mut Layout, doc: &InvoiceDocument) {
    let top = layout.y;
    layout.text(LEFT, top, HEADING, "BILL TO", 200.0);
    let mut y = top - 16.0;
    for (i, line) in doc.customer.iter().enumerate() {
        let style = if i == 0 { BODY_BOLD } else { BODY };
        layout.text(LEFT, y, style, line, 250.0);
        y -= 14.0;
    }
    let facts_left = 330.0;
    layout.text(facts_left, top, HEADING, "DETAILS", 200.0);
    let mut right_y = top - 16.0;
    for (label, value) in &doc.facts {
        layout.text(
            facts_left,
            right_y,
            (Face::Regular, 10.0, MUTED),
            label,
            100.0,
        );
        layout.text_right(RIGHT, right_y, BODY, value);
        right_y -= 14.0;
    }
    layout.y = y.min(right_y) - 14.0;
    layout.text(LEFT, layout.y, HEADING, "BILLING PERIOD", 200.0);
    layout.y -= 16.0;
    for (label, value) in &doc.periods {
        layout.text(LEFT, layout.y, (Face::Regular, 10.0, MUTED), label, 115.0);
        layout.text(LEFT + 120.0, layout.y, BODY, value, RIGHT - LEFT - 120.0);
        layout.y -= 14.0;
    }
    layout.y -= 14.0;
}

fn table_header(layout: &mut Layout, currency: &str) {
    let height = 20.0;
    layout.band(layout.y - height, height);
    let y = layout.y - 13.5;
    layout.text(LEFT + 6.0, y, HEADING, "ITEM", ITEM_WIDTH);
    layout.text_right(UNITS_RIGHT, y, HEADING, "UNITS");
    layout.text_right(PRICE_RIGHT, y, HEADING, "UNIT PRICE");
    layout.text_right(
        AMOUNT_RIGHT - 6.0,
        y,
        HEADING,
        &format!("AMOUNT ({currency})"),
    );
    layout.y -= height;
}

fn fee_table(layout: &mut Layout, doc: &InvoiceDocument) {
    layout.ensure(20.0 + 32.0);
    table_header(layout, &doc.currency);
    if doc.lines.is_empty() {
        layout.y -= 18.0;
        layout.text(LEFT + 6.0, layout.y, SMALL, "No fees.", ITEM_WIDTH);
        layout.y -= 10.0;
    }
    for line in &doc.lines {
        let height = 32.0;
        if layout.ensure(height) {
            table_header(layout, &doc.currency);
        }
        let y = layout.y - 14.0;
        layout.text(LEFT + 6.0, y, BODY, &line.item, ITEM_WIDTH);
        layout.text(LEFT + 6.0, y - 11.0, SMALL, &line.detail, ITEM_WIDTH);
        layout.text_right(UNITS_RIGHT, y, BODY, &line.units);
        layout.text_right(PRICE_RIGHT, y, BODY, &line.unit_price);
        layout.text_right(AMOUNT_RIGHT - 6.0, y, BODY, &line.amount);
        layout.y -= height;
        layout.rule(LEFT, RIGHT, layout.y, 0.5);
    }
    layout.y -= 20.0;
}

fn totals(layout: &mut Layout, doc: &InvoiceDocument) {
    let height = doc.totals.len() as f32 * 16.0 + 16.0;
    layout.ensure(height);
    let label_left = 300.0;
    for row in &doc.totals {
        if row.total {
            layout.y -= 6.0;
            layout.rule_gray(label_left, RIGHT, layout.y + 14.0, 0.75, MUTED);
            let style = (Face::Bold, 12.0, TEXT);
            layout.text(
                label_left,
                layout.y,
                style,
                &format!("{} ({})", row.label, doc.currency),
                150.0,
            );
            layout.text_right(AMOUNT_RIGHT - 6.0, layout.y, style, &row.amount);
        } else {
            layout.text(
                label_left,
                layout.y,
                (Face::Regular, 10.0, MUTED),
                &row.label,
                155.0,
            );
            layout.text_right(AMOUNT_RIGHT - 6.0, layout.y, BODY, &row.amount);
        }
        layout.y -= 16.0;
    }
}

fn footers(layout: &mut Layout, doc: &InvoiceDocument) {
    let count = layout.pages.len();
    for (i, page) in layout.pages.iter_mut().enumerate() {
        let left = encode(&format!(
            "{} \u{b7} Invoice {} \u{b7} {}",
            doc.issuer, doc.number, doc.reference
        ));
        let left = fit(left, Face::Regular, 8.0, 420.0);
        let right = encode(&format!("Page {} of {count}", i + 1));
        let right_x = RIGHT - Face::Regular.width(&right, 8.0);
        page.set_stroke_gray(RULE)
            .set_line_width(0.5)
            .move_to(LEFT, 50.0)
            .line_to(RIGHT, 50.0)
            .stroke();
        page.set_fill_gray(MUTED)
            .begin_text()
            .set_font(REGULAR, 8.0)
            .next_line(LEFT, 38.0)
            .show(Str(&left))
            .end_text()
            .begin_text()
            .set_font(REGULAR, 8.0)
            .next_line(right_x, 38.0)
            .show(Str(&right))
            .end_text();
    }
}

/// Renders the document as a PDF file.
pub fn render(doc: &InvoiceDocument) -> Vec<u8> {
    let mut layout = Layout::new();
    header(&mut layout, doc);
    parties(&mut layout, doc);
    fee_table(&mut layout, doc);
    totals(&mut layout, doc);
    footers(&mut layout, doc);

    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let mut pdf = Pdf::new();
    // Each page takes two ids after the first five: the page and its content stream.
    let mut next = 6;
    let page_ids: Vec<(Ref, Ref)> = layout
        .pages
        .iter()
        .map(|_| {
            let ids = (Ref::new(next), Ref::new(next + 1));
            next += 2;
            ids
        })
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().map(|(page, _)| *page))
        .count(i32::try_from(page_ids.len()).unwrap_or(i32::MAX));
    for (id, face) in [(regular, Face::Regular), (bold, Face::Bold)] {
        pdf.type1_font(id)
            .base_font(Name(face.base_font()))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    pdf.document_info(info)
        .title(TextStr(&format!("Invoice {}", doc.number)))
        .author(TextStr(&doc.issuer))
        .producer(TextStr("tally"));
    for ((page_id, content_id), content) in page_ids.iter().zip(layout.pages) {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .parent(tree)
            .contents(*content_id);
        page.resources()
            .fonts()
            .pair(REGULAR, regular)
            .pair(BOLD, bold);
        page.finish();
        pdf.stream(*content_id, &content.finish());
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{DocumentLine, TotalRow};

    fn document(lines: usize, badge: Option<Badge>) -> InvoiceDocument {
        InvoiceDocument {
            issuer: "Nimbus (Compute) \\ GmbH".into(),
            number: "NIM-0001-001-001".into(),
            badge,
            facts: vec![("Invoice number", "NIM-0001-001-001".into())],
            customer: vec!["Acme".into(), "Customer ID: acme".into()],
            periods: vec![(
                "Subscription period",
                "2026-03-01 \u{2013} 2026-03-31".into(),
            )],
            currency: "KWD".into(),
            lines: (0..lines)
                .map(|i| DocumentLine {
                    item: format!(
                        "Line {i} with a name long enough to need cutting before the units column"
                    ),
                    detail: "Usage \u{b7} 2026-03-01 \u{2013} 2026-03-31".into(),
                    units: "1".into(),
                    unit_price: "1.000".into(),
                    amount: "1.000".into(),
                })
                .collect(),
            totals: vec![TotalRow {
                label: "Total".into(),
                amount: format!("{lines}.000"),
                total: true,
            }],
            reference: "ref".into(),
        }
    }

    fn count(haystack: &[u8], needle: &[u8]) -> usize {
        haystack
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count()
    }

    #[test]
    fn a_long_fee_table_continues_on_more_pages() {
        let one = render(&document(3, None));
        assert!(one.starts_with(b"%PDF-"));
        assert_eq!(count(&one, b"/Type /Page\n"), 1);
        assert_eq!(count(&one, b"(Page 1 of 1)"), 1);

        let many = render(&document(60, Some(Badge::Voided)));
        let pages = count(&many, b"(ITEM)");
        assert!(pages >= 3, "{pages} pages");
        assert_eq!(count(&many, b"/Type /Page\n"), pages);
        assert_eq!(
            count(&many, format!("(Page {pages} of {pages})").as_bytes()),
            1
        );
        assert_eq!(count(&many, b"(60.000)"), 1);
        assert_eq!(count(&many, b"(VOIDED)"), 1);
        // Names are written as PDF strings (here the heading and the document's author): a backslash
        // is escaped, balanced parentheses need not be.
        assert_eq!(count(&many, br"(Nimbus (Compute) \\ GmbH)"), 2);
    }
}
