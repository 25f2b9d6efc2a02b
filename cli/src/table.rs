//! Aligned text tables, laid out like kubectl's (three spaces between columns,
//! no trailing padding on the last column).

/// Spaces between columns.
const GAP: usize = 3;

/// A header row and data rows of equal length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: Vec<String>) -> Self {
        Table {
            headers,
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Width of each column: the widest of header and cells.
    pub fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i >= w.len() {
                    w.push(0);
                }
                w[i] = w[i].max(width(cell));
            }
        }
        w
    }

    /// The whole table, one line per row, each ending in a newline.
    pub fn render(&self, headers: bool) -> String {
        let widths = self.widths();
        let mut out = String::new();
        if headers {
            out.push_str(&render_row(&self.headers, &widths));
        }
        for row in &self.rows {
            out.push_str(&render_row(row, &widths));
        }
        out
    }
}

/// One row padded to `widths` (a cell wider than its column just pushes the
/// rest along, as when watch rows arrive after the table was printed).
pub fn render_row(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        line.push_str(cell);
        if i + 1 < cells.len() {
            let w = widths.get(i).copied().unwrap_or(0);
            let pad = w.saturating_sub(width(cell)) + GAP;
            line.extend(std::iter::repeat_n(' ', pad));
        }
    }
    line.push('\n');
    line
}

fn width(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn aligns_columns_like_kubectl() {
        let mut t = Table::new(strings(&["NAME", "READY", "STATUS", "RESTARTS", "AGE"]));
        t.push(strings(&["web-7d9f8-abcde", "1/1", "Running", "0", "5m"]));
        t.push(strings(&["db-0", "0/1", "Pending", "12", "2d4h"]));
        let expected = "\
NAME              READY   STATUS    RESTARTS   AGE
web-7d9f8-abcde   1/1     Running   0          5m
db-0              0/1     Pending   12         2d4h
";
        assert_eq!(t.render(true), expected);
        assert_eq!(
            t.render(false).lines().next().unwrap(),
            "web-7d9f8-abcde   1/1     Running   0          5m"
        );
    }

    #[test]
    fn wide_cells_push_later_columns_without_breaking() {
        let widths = vec![4, 3];
        assert_eq!(
            render_row(&strings(&["longer-name", "1", "x"]), &widths),
            "longer-name   1     x\n"
        );
        assert_eq!(Table::new(strings(&["NAME"])).render(true), "NAME\n");
    }

    #[test]
    fn counts_characters_not_bytes() {
        let mut t = Table::new(strings(&["NAME", "AGE"]));
        t.push(strings(&["café", "1s"]));
        assert_eq!(t.render(true), "NAME   AGE\ncafé   1s\n");
    }
}
