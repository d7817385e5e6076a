//! Helvetica and Helvetica-Bold, two of PDF's standard 14 fonts: every PDF reader has them, so the
//! document embeds no font file. This module encodes text in WinAnsiEncoding (Windows-1252) and
//! measures it with the fonts' Adobe metrics, so columns can be right-aligned and long names cut.

/// One of the two faces the document uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// Helvetica.
    Regular,
    /// Helvetica-Bold.
    Bold,
}

impl Face {
    /// Returns the PostScript name of the standard font.
    pub fn base_font(self) -> &'static [u8] {
        match self {
            Face::Regular => b"Helvetica",
            Face::Bold => b"Helvetica-Bold",
        }
    }

    /// Returns the width of an encoded string at `size` points.
    pub fn width(self, encoded: &[u8], size: f32) -> f32 {
        let table = match self {
            Face::Regular => &HELVETICA,
            Face::Bold => &HELVETICA_BOLD,
        };
        let units: u32 = encoded
            .iter()
            .map(|&b| u32::from(table[usize::from(b.saturating_sub(32))]))
            .sum();
        // Widths are in thousandths of the font size; `units` stays far below f32's exact range.
        units as f32 * size / 1000.0
    }
}

/// Characters 0x80–0x9F of Windows-1252 (0 where the code is unassigned).
const WIN_ANSI_HIGH: [char; 32] = [
    '\u{20ac}', '\0', '\u{201a}', '\u{0192}', '\u{201e}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02c6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\0', '\u{017d}', '\0', '\0',
    '\u{2018}', '\u{2019}', '\u{201c}', '\u{201d}', '\u{2022}', '\u{2013}', '\u{2014}', '\u{02dc}',
    '\u{2122}', '\u{0161}', '\u{203a}', '\u{0153}', '\0', '\u{017e}', '\u{0178}',
];

/// Encodes text in WinAnsiEncoding; characters it lacks become `?`, control characters a space.
pub fn encode(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match u32::from(c) {
            0x20..=0x7e | 0xa0..=0xff => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            0x00..=0x1f | 0x7f => b' ',
            _ => WIN_ANSI_HIGH
                .iter()
                .position(|&h| h == c && h != '\0')
                .and_then(|i| u8::try_from(0x80 + i).ok())
                .unwrap_or(b'?'),
        })
        .collect()
}

/// Cuts encoded text so that it fits in `max` points, ending it with an ellipsis when cut.
pub fn fit(encoded: Vec<u8>, face: Face, size: f32, max: f32) -> Vec<u8> {
    if face.width(&encoded, size) <= max {
        return encoded;
    }
    const ELLIPSIS: u8 = 0x85;
    let mut cut = encoded;
    while !cut.is_empty() {
        cut.pop();
        let mut candidate = cut.clone();
        candidate.push(ELLIPSIS);
        if face.width(&candidate, size) <= max {
            return candidate;
        }
    }
    cut
}

// Advance widths (thousandths of an em) of codes 32–255 in WinAnsiEncoding, from Adobe's AFM files
// for Helvetica and Helvetica-Bold; 0 for unassigned codes. Sixteen codes a row.
#[rustfmt::skip]
const HELVETICA: [u16; 224] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, 0,
    556, 0, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0,
    0, 222, 222, 333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 0, 500, 667,
    278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    400, 584, 333, 333, 333, 578, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500,
];
#[rustfmt::skip]
const HELVETICA_BOLD: [u16; 224] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, 0,
    556, 0, 278, 556, 500, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0,
    0, 278, 278, 500, 500, 350, 556, 1000, 333, 1000, 556, 333, 944, 0, 500, 667,
    278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    400, 584, 333, 333, 333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    722, 722, 722, 722, 722, 722, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278,
    611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_encoded_in_win_ansi() {
        assert_eq!(encode("44.75"), b"44.75".to_vec());
        assert_eq!(encode("Müller – €5"), b"M\xfcller \x96 \x805".to_vec());
        assert_eq!(encode("東京\n"), b"?? ".to_vec());
    }

    #[test]
    fn widths_follow_the_metrics() {
        // Digits are 556 wide in both faces.
        assert!((Face::Regular.width(b"1234", 10.0) - 22.24).abs() < 1e-4);
        assert!(Face::Bold.width(b"Total", 10.0) > Face::Regular.width(b"Total", 10.0));
        let cut = fit(
            encode("A very long item name indeed"),
            Face::Regular,
            10.0,
            60.0,
        );
        assert!(Face::Regular.width(&cut, 10.0) <= 60.0);
        assert_eq!(cut.last(), Some(&0x85));
    }
}
