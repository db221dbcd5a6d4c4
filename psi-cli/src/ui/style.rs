//! Colour and aligned text: texts made of styled segments, rendered with or
//! without ANSI escapes and cut to a width.

use std::io::IsTerminal;

use crate::cli::ColorChoice;

/// Whether to colour stdout: `--color`, then NO_COLOR, a terminal, and TERM.
pub fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
            !no_color && !dumb && std::io::stdout().is_terminal()
        }
    }
}

/// How a segment looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// As the terminal prints.
    #[default]
    Plain,
    /// Bold: titles.
    Bold,
    /// Dim: headers, zeros, notes.
    Dim,
    /// Yellow: unavailable, moderate pressure.
    Warn,
    /// Red: high pressure, breaches.
    Bad,
    /// Green: checks that hold.
    Good,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Plain => "",
            Style::Bold => "\x1b[1m",
            Style::Dim => "\x1b[2m",
            Style::Warn => "\x1b[33m",
            Style::Bad => "\x1b[1;31m",
            Style::Good => "\x1b[32m",
        }
    }

    /// The style of a percentage (hundredths): dim at zero, yellow from 10 %,
    /// red from 40 %.
    pub fn for_hundredths(h: u64) -> Style {
        match h {
            0 => Style::Dim,
            1..1000 => Style::Plain,
            1000..4000 => Style::Warn,
            _ => Style::Bad,
        }
    }
}

/// A run of text in one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seg {
    /// The text (no newline).
    pub text: String,
    /// Its look.
    pub style: Style,
}

/// One line of output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text(pub Vec<Seg>);

impl Text {
    /// A line of one segment.
    pub fn new(text: impl Into<String>, style: Style) -> Self {
        Text(vec![Seg {
            text: text.into(),
            style,
        }])
    }

    /// Appends a segment.
    pub fn push(&mut self, text: impl Into<String>, style: Style) -> &mut Self {
        self.0.push(Seg {
            text: text.into(),
            style,
        });
        self
    }

    /// Shortens the last non-empty segment from the left (`…ainer.scope`) so that the
    /// line fits in `width` characters: for paths, whose end says most.
    pub fn fit_last(&mut self, width: usize) {
        let total: usize = self.0.iter().map(|s| s.text.chars().count()).sum();
        let Some(last) = self.0.iter_mut().rev().find(|s| !s.text.is_empty()) else {
            return;
        };
        let len = last.text.chars().count();
        if total <= width || len < 2 {
            return;
        }
        let keep = len.saturating_sub(total - width + 1);
        let tail: String = last.text.chars().skip(len - keep).collect();
        last.text = format!("…{tail}");
    }

    /// The line as text, coloured or not, cut to `width` characters.
    pub fn render(&self, color: bool, width: Option<usize>) -> String {
        let mut out = String::new();
        let mut left = width.unwrap_or(usize::MAX);
        for seg in &self.0 {
            if left == 0 {
                break;
            }
            let text: String = seg.text.chars().take(left).collect();
            left -= text.chars().count();
            if color && seg.style != Style::Plain && !text.is_empty() {
                out.push_str(seg.style.code());
                out.push_str(&text);
                out.push_str("\x1b[0m");
            } else {
                out.push_str(&text);
            }
        }
        // Padding at the end of a line is noise in files and diffs.
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out
    }
}

/// How a column is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// A table cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The text.
    pub text: String,
    /// Its look.
    pub style: Style,
    /// Runs to the end of the line, outside the column widths (a message in
    /// place of values). Only a row's last cell spans.
    pub span: bool,
}

impl Cell {
    /// A cell.
    pub fn new(text: impl Into<String>, style: Style) -> Self {
        Cell {
            text: text.into(),
            style,
            span: false,
        }
    }

    /// A cell that runs to the end of the line.
    pub fn span(text: impl Into<String>, style: Style) -> Self {
        Cell {
            text: text.into(),
            style,
            span: true,
        }
    }
}

/// Aligned columns separated by two spaces.
#[derive(Debug, Clone)]
pub struct Table {
    align: Vec<Align>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table with a dim header row.
    pub fn new(headers: &[(&str, Align)]) -> Self {
        Table {
            align: headers.iter().map(|h| h.1).collect(),
            rows: vec![headers.iter().map(|h| Cell::new(h.0, Style::Dim)).collect()],
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// The rows as lines, columns padded to their widest cell.
    pub fn lines(&self) -> Vec<Text> {
        let mut widths = vec![0; self.align.len()];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if !cell.span
                    && let Some(w) = widths.get_mut(i)
                {
                    *w = (*w).max(cell.text.chars().count());
                }
            }
        }
        self.rows
            .iter()
            .map(|row| {
                let mut line = Text::default();
                for (i, cell) in row.iter().enumerate() {
                    if i > 0 {
                        line.push("  ", Style::Plain);
                    }
                    let width = widths.get(i).copied().unwrap_or(0);
                    let text = if cell.span {
                        cell.text.clone()
                    } else {
                        match self.align.get(i) {
                            Some(Align::Right) => format!("{:>width$}", cell.text),
                            _ => format!("{:<width$}", cell.text),
                        }
                    };
                    // Keep the padding outside the colour, so a dim zero is
                    // not a dim run of spaces.
                    let pad = text.len() - text.trim_start().len();
                    let (lead, rest) = text.split_at(pad);
                    let tail = rest.len() - rest.trim_end().len();
                    let (body, trail) = rest.split_at(rest.len() - tail);
                    line.push(lead, Style::Plain);
                    line.push(body, cell.style);
                    line.push(trail, Style::Plain);
                }
                line
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_spans_do_not_widen() {
        let mut t = Table::new(&[("NAME", Align::Left), ("VALUE", Align::Right)]);
        t.row(vec![
            Cell::new("cpu", Style::Plain),
            Cell::new("1.50", Style::Bad),
        ]);
        t.row(vec![
            Cell::new("irq", Style::Plain),
            Cell::span("unavailable: a long explanation", Style::Warn),
        ]);
        let text: Vec<String> = t.lines().iter().map(|l| l.render(false, None)).collect();
        assert_eq!(
            text,
            [
                "NAME  VALUE",
                "cpu    1.50",
                "irq   unavailable: a long explanation"
            ]
        );
        let coloured = t.lines()[1].render(true, None);
        assert_eq!(coloured, "cpu    \x1b[1;31m1.50\x1b[0m");
    }

    #[test]
    fn lines_are_cut_to_the_width() {
        let mut l = Text::new("abc", Style::Bold);
        l.push("defgh", Style::Plain);
        assert_eq!(l.render(false, Some(5)), "abcde");
        assert_eq!(l.render(true, Some(2)), "\x1b[1mab\x1b[0m");
        l.fit_last(6);
        assert_eq!(l.render(false, None), "abc…gh");
        l.fit_last(100);
        assert_eq!(l.render(false, None), "abc…gh");
    }
}
