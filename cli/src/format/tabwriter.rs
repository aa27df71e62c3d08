//! Go's `text/tabwriter` as the docker CLI configures it: `NewWriter(out, 10, 1, 3,
//! ' ', 0)`, minimum cell width 10, padding 3, left aligned.
//!
//! A cell is text ended by a tab; the text after a line's last tab is not part of any
//! column. Column widths are computed per block of consecutive lines that have a cell
//! in that column, as Go does, so layouts match byte for byte (trailing spaces too).

/// Docker's minimum cell width (padding included).
pub const MIN_WIDTH: usize = 10;
/// Docker's padding between columns.
pub const PADDING: usize = 3;

/// Lays out `text` (lines of tab-separated cells) like Go's tabwriter.
pub fn tabwrite(text: &str) -> String {
    tabwrite_min(text, MIN_WIDTH)
}

/// [`tabwrite`] with another minimum cell width (`docker top` uses 20).
pub fn tabwrite_min(text: &str, min_width: usize) -> String {
    let mut lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    // A trailing newline leaves one empty line that is not part of the table.
    let trailing_newline = text.ends_with('\n');
    if trailing_newline {
        lines.pop();
    }
    let mut out = String::new();
    let mut widths = Vec::new();
    format(&lines, &mut widths, min_width, 0, lines.len(), 0, &mut out);
    if !trailing_newline && out.ends_with('\n') {
        out.pop();
    }
    out
}

fn cell_width(s: &str) -> usize {
    s.chars().count()
}

fn format(
    lines: &[Vec<&str>],
    widths: &mut Vec<usize>,
    min_width: usize,
    mut line0: usize,
    line1: usize,
    column: usize,
    out: &mut String,
) {
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        // A block of lines with a cell in `column` starts here.
        write_lines(lines, widths, line0, this, out);
        line0 = this;
        let mut width = min_width;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(cell_width(lines[this][column]) + PADDING);
            this += 1;
        }
        widths.push(width);
        format(lines, widths, min_width, line0, this, column + 1, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, widths, line0, line1, out);
}

fn write_lines(lines: &[Vec<&str>], widths: &[usize], from: usize, to: usize, out: &mut String) {
    for line in &lines[from..to] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < line.len() && j < widths.len() {
                let pad = widths[j].saturating_sub(cell_width(cell));
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_to_min_width_and_padding() {
        let t = "ID\tNAME\tPORTS\nabc\tweb\t*:80->80/tcp\n";
        assert_eq!(
            tabwrite(t),
            "ID        NAME      PORTS\nabc       web       *:80->80/tcp\n"
        );
    }

    #[test]
    fn wide_cells_and_runes() {
        let t = "A\tB\n\"No such image: swarmfx/busybo…\"\tx\n";
        assert_eq!(
            tabwrite(t),
            "A                                  B\n\"No such image: swarmfx/busybo…\"   x\n"
        );
    }

    #[test]
    fn empty_trailing_cells_keep_padding() {
        assert_eq!(
            tabwrite("A\tB\tC\nx\t\t\n"),
            "A         B         C\nx                   \n"
        );
    }
}
