//! A small Markdown renderer for `system.Markdown` artifacts: ATX headings, paragraphs,
//! emphasis, inline and fenced code, block quotes, lists (nested by indentation), pipe
//! tables, rules, links and images. Every piece of the source's own text is HTML-escaped
//! (raw HTML shows as text), and links and images keep only `http`, `https`, `mailto`,
//! relative and `#` targets (`data:image/…` too for images). The result is shown in a
//! sandboxed frame besides.

use std::fmt::Write as _;

use crate::ui::catalog::escape;

/// The HTML of a Markdown document.
pub fn to_html(source: &str) -> String {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = String::new();
    blocks(&lines, &mut out);
    out
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// The level and text of an ATX heading (`## Title ##`).
fn heading(line: &str) -> Option<(usize, &str)> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let level = trimmed.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &trimmed[level..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    let text = rest.trim().trim_end_matches('#').trim_end();
    Some((level, text))
}

fn is_rule(line: &str) -> bool {
    let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    compact.len() >= 3
        && ['-', '*', '_']
            .iter()
            .any(|&mark| compact.chars().all(|c| c == mark))
}

/// The fence (```` ``` ```` or `~~~`, with its length) and info string of a code fence line.
fn fence(line: &str) -> Option<(String, &str)> {
    let trimmed = line.trim_start();
    for mark in ['`', '~'] {
        let count = trimmed.chars().take_while(|&c| c == mark).count();
        if count >= 3 {
            return Some((mark.to_string().repeat(count), trimmed[count..].trim()));
        }
    }
    None
}

/// A list item's marker: whether ordered, and the width of the marker with its space.
fn list_marker(line: &str) -> Option<(bool, usize)> {
    let indent = line.len() - line.trim_start().len();
    let trimmed = &line[indent..];
    if indent > 3 {
        return None;
    }
    if let Some(rest) = trimmed.strip_prefix(['-', '*', '+']) {
        if rest.starts_with(' ') || rest.is_empty() {
            return Some((false, indent + 2.min(1 + rest.len())));
        }
        return None;
    }
    let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
    if (1..=9).contains(&digits) {
        let rest = &trimmed[digits..];
        if let Some(after) = rest.strip_prefix(['.', ')'])
            && (after.starts_with(' ') || after.is_empty())
        {
            return Some((true, indent + digits + 1 + usize::from(!after.is_empty())));
        }
    }
    None
}

/// The cells of a table row (`| a | b |`).
fn table_cells(line: &str) -> Vec<&str> {
    let trimmed = line.trim();
    let trimmed = trimmed.strip_prefix('|').unwrap_or(trimmed);
    let trimmed = trimmed.strip_suffix('|').unwrap_or(trimmed);
    trimmed.split('|').map(str::trim).collect()
}

fn is_table_delimiter(line: &str) -> bool {
    line.contains('-')
        && line.contains(['|', '-'])
        && table_cells(line).iter().all(|cell| {
            let cell = cell.trim_start_matches(':').trim_end_matches(':');
            !cell.is_empty() && cell.chars().all(|c| c == '-')
        })
}

/// Whether `line` starts a block other than a paragraph (so it ends one).
fn starts_block(line: &str) -> bool {
    heading(line).is_some()
        || fence(line).is_some()
        || line.trim_start().starts_with('>')
        || list_marker(line).is_some()
        || is_rule(line)
}

fn blocks(lines: &[&str], out: &mut String) {
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if is_blank(line) {
            i += 1;
            continue;
        }
        if let Some((mark, info)) = fence(line) {
            let language = info.split_whitespace().next().unwrap_or_default();
            let mut code = String::new();
            i += 1;
            while i < lines.len() && !lines[i].trim_start().starts_with(mark.as_str()) {
                code.push_str(lines[i]);
                code.push('\n');
                i += 1;
            }
            i += 1;
            if language.is_empty() {
                let _ = writeln!(out, "<pre><code>{}</code></pre>", escape(&code));
            } else {
                let _ = writeln!(
                    out,
                    "<pre><code class=\"language-{}\">{}</code></pre>",
                    escape(language),
                    escape(&code)
                );
            }
            continue;
        }
        if let Some((level, text)) = heading(line) {
            let _ = writeln!(out, "<h{level}>{}</h{level}>", inline(text));
            i += 1;
            continue;
        }
        if is_rule(line) {
            out.push_str("<hr>\n");
            i += 1;
            continue;
        }
        if line.starts_with("    ") || line.starts_with('\t') {
            let mut code = String::new();
            while i < lines.len()
                && (lines[i].starts_with("    ")
                    || lines[i].starts_with('\t')
                    || is_blank(lines[i]))
            {
                let text = lines[i]
                    .strip_prefix("    ")
                    .or_else(|| lines[i].strip_prefix('\t'))
                    .unwrap_or("");
                code.push_str(text);
                code.push('\n');
                i += 1;
            }
            let _ = writeln!(
                out,
                "<pre><code>{}</code></pre>",
                escape(code.trim_end_matches('\n'))
            );
            continue;
        }
        if line.trim_start().starts_with('>') {
            let mut inner = Vec::new();
            while i < lines.len() && lines[i].trim_start().starts_with('>') {
                let rest = &lines[i].trim_start()[1..];
                inner.push(rest.strip_prefix(' ').unwrap_or(rest));
                i += 1;
            }
            out.push_str("<blockquote>\n");
            blocks(&inner, out);
            out.push_str("</blockquote>\n");
            continue;
        }
        if let Some((ordered, _)) = list_marker(line) {
            i = list(lines, i, ordered, out);
            continue;
        }
        if line.contains('|') && i + 1 < lines.len() && is_table_delimiter(lines[i + 1]) {
            i = table(lines, i, out);
            continue;
        }
        // A paragraph: up to a blank line or the start of another block.
        let start = i;
        i += 1;
        while i < lines.len() && !is_blank(lines[i]) && !starts_block(lines[i]) {
            i += 1;
        }
        let mut text = String::new();
        for (n, line) in lines[start..i].iter().enumerate() {
            if n > 0 {
                text.push('\n');
            }
            text.push_str(line.trim());
            if line.ends_with("  ") && n + 1 < i - start {
                text.push_str("\u{0}br");
            }
        }
        let html = inline(&text).replace("\u{0}br", "<br>");
        let _ = writeln!(out, "<p>{html}</p>");
    }
}

/// A list from `lines[start]`; returns the index after it.
fn list(lines: &[&str], start: usize, ordered: bool, out: &mut String) -> usize {
    let tag = if ordered { "ol" } else { "ul" };
    let _ = writeln!(out, "<{tag}>");
    let mut i = start;
    while i < lines.len() {
        let Some((item_ordered, width)) = list_marker(lines[i]) else {
            break;
        };
        if item_ordered != ordered {
            break;
        }
        let mut item: Vec<&str> = vec![lines[i].get(width..).unwrap_or("")];
        i += 1;
        // The item's other lines: indented ones, and lazy continuation of its text.
        while i < lines.len() {
            let line = lines[i];
            let indent = line.len() - line.trim_start().len();
            if is_blank(line) {
                let continues = lines
                    .get(i + 1)
                    .is_some_and(|next| next.len() - next.trim_start().len() >= 2);
                if !continues {
                    break;
                }
                item.push("");
            } else if indent >= 2 {
                item.push(&line[indent.min(width)..]);
            } else if list_marker(line).is_some() || starts_block(line) {
                break;
            } else {
                item.push(line);
            }
            i += 1;
        }
        out.push_str("<li>");
        if item.len() == 1 {
            out.push_str(&inline(item[0].trim()));
        } else {
            let mut inner = String::new();
            blocks(&item, &mut inner);
            // A one-paragraph item (with a nested list) reads better without the <p>.
            out.push_str(&tighten(&inner));
        }
        out.push_str("</li>\n");
        while i < lines.len() && is_blank(lines[i]) {
            if lines
                .get(i + 1)
                .is_some_and(|next| list_marker(next).is_some_and(|(o, _)| o == ordered))
            {
                i += 1;
            } else {
                break;
            }
        }
    }
    let _ = writeln!(out, "</{tag}>");
    i
}

/// `<p>text</p>\n<ul>…` → `text\n<ul>…` when the item starts with its only paragraph.
fn tighten(html: &str) -> String {
    if let Some(rest) = html.strip_prefix("<p>")
        && let Some(end) = rest.find("</p>\n")
        && !rest[end..].contains("<p>")
    {
        return format!("{}\n{}", &rest[..end], &rest[end + 5..]);
    }
    html.to_owned()
}

/// A pipe table from `lines[start]` (header, delimiter, rows); returns the index after it.
fn table(lines: &[&str], start: usize, out: &mut String) -> usize {
    let header = table_cells(lines[start]);
    let aligns: Vec<&str> = table_cells(lines[start + 1])
        .iter()
        .map(|cell| match (cell.starts_with(':'), cell.ends_with(':')) {
            (true, true) => " style=\"text-align:center\"",
            (false, true) => " style=\"text-align:right\"",
            _ => "",
        })
        .collect();
    let align = |n: usize| aligns.get(n).copied().unwrap_or("");
    out.push_str("<table>\n<thead><tr>");
    for (n, cell) in header.iter().enumerate() {
        let _ = write!(out, "<th{}>{}</th>", align(n), inline(cell));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let mut i = start + 2;
    while i < lines.len() && !is_blank(lines[i]) && lines[i].contains('|') {
        out.push_str("<tr>");
        let cells = table_cells(lines[i]);
        for n in 0..header.len() {
            let _ = write!(
                out,
                "<td{}>{}</td>",
                align(n),
                inline(cells.get(n).copied().unwrap_or(""))
            );
        }
        out.push_str("</tr>\n");
        i += 1;
    }
    out.push_str("</tbody>\n</table>\n");
    i
}

/// Whether a link or image target may be kept.
fn safe_target(url: &str, image: bool) -> bool {
    let url = url.trim();
    let scheme_end = url.find(':');
    let path_start = url.find(['/', '?', '#']);
    match scheme_end {
        Some(end) if path_start.is_none_or(|start| end < start) => {
            let scheme = url[..end].to_ascii_lowercase();
            matches!(scheme.as_str(), "http" | "https")
                || (!image && scheme == "mailto")
                || (image && url.to_ascii_lowercase().starts_with("data:image/"))
        }
        _ => true,
    }
}

/// The end of a `[…]` starting at `open` (its matching `]`), counting nested brackets.
fn closing_bracket(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut i = open;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Where `needle` next occurs in `chars` at or after `from`.
fn find(chars: &[char], from: usize, needle: &[char]) -> Option<usize> {
    (from..chars.len().saturating_sub(needle.len() - 1))
        .find(|&i| chars[i..].starts_with(needle) && (i == 0 || chars[i - 1] != '\\'))
}

/// Inline Markdown as HTML.
fn inline(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut plain = String::new();
    let mut i = 0;
    let flush = |plain: &mut String, out: &mut String| {
        out.push_str(&escape(plain));
        plain.clear();
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() && chars[i + 1].is_ascii_punctuation() => {
                plain.push(chars[i + 1]);
                i += 2;
            }
            '`' => {
                let ticks = chars[i..].iter().take_while(|&&c| c == '`').count();
                let fence: Vec<char> = vec!['`'; ticks];
                match find(&chars, i + ticks, &fence) {
                    Some(end) => {
                        flush(&mut plain, &mut out);
                        let code: String = chars[i + ticks..end].iter().collect();
                        let _ = write!(out, "<code>{}</code>", escape(code.trim()));
                        i = end + ticks;
                    }
                    None => {
                        plain.extend(&chars[i..i + ticks]);
                        i += ticks;
                    }
                }
            }
            '*' | '_' => {
                let double = chars.get(i + 1) == Some(&c);
                let width = if double { 2 } else { 1 };
                let marker = vec![c; width];
                let opens = chars
                    .get(i + width)
                    .is_some_and(|next| !next.is_whitespace());
                // `_` inside a word (snake_case) is no emphasis.
                let inside_word = c == '_' && i > 0 && chars[i - 1].is_alphanumeric();
                let end = if opens && !inside_word {
                    find(&chars, i + width + 1, &marker).filter(|&end| {
                        !chars[end - 1].is_whitespace()
                            && (c != '_'
                                || !chars
                                    .get(end + width)
                                    .is_some_and(|next| next.is_alphanumeric()))
                    })
                } else {
                    None
                };
                match end {
                    Some(end) => {
                        flush(&mut plain, &mut out);
                        let inner: String = chars[i + width..end].iter().collect();
                        let tag = if double { "strong" } else { "em" };
                        let _ = write!(out, "<{tag}>{}</{tag}>", inline(&inner));
                        i = end + width;
                    }
                    None => {
                        plain.extend(&marker);
                        i += width;
                    }
                }
            }
            '!' | '[' => {
                let image = c == '!';
                let open = if image { i + 1 } else { i };
                let parsed = (chars.get(open) == Some(&'['))
                    .then(|| closing_bracket(&chars, open))
                    .flatten()
                    .filter(|&close| chars.get(close + 1) == Some(&'('))
                    .and_then(|close| {
                        let target_end = find(&chars, close + 2, &[')'])?;
                        Some((close, target_end))
                    });
                match parsed {
                    Some((close, target_end)) => {
                        flush(&mut plain, &mut out);
                        let label: String = chars[open + 1..close].iter().collect();
                        let target: String = chars[close + 2..target_end].iter().collect();
                        let url = target.split_whitespace().next().unwrap_or_default();
                        let url = url.trim_start_matches('<').trim_end_matches('>');
                        if image {
                            if safe_target(url, true) {
                                let _ = write!(
                                    out,
                                    "<img src=\"{}\" alt=\"{}\">",
                                    escape(url),
                                    escape(&label)
                                );
                            } else {
                                out.push_str(&escape(&label));
                            }
                        } else if safe_target(url, false) {
                            let _ =
                                write!(out, "<a href=\"{}\">{}</a>", escape(url), inline(&label));
                        } else {
                            out.push_str(&inline(&label));
                        }
                        i = target_end + 1;
                    }
                    None => {
                        plain.push(c);
                        i += 1;
                    }
                }
            }
            '<' => {
                // An autolink `<https://…>`; any other `<` is text.
                let end = find(&chars, i + 1, &['>']);
                let target: Option<String> = end.map(|end| chars[i + 1..end].iter().collect());
                match (end, target) {
                    (Some(end), Some(url))
                        if (url.starts_with("http://") || url.starts_with("https://"))
                            && !url.contains(char::is_whitespace) =>
                    {
                        flush(&mut plain, &mut out);
                        let _ = write!(out, "<a href=\"{0}\">{0}</a>", escape(&url));
                        i = end + 1;
                    }
                    _ => {
                        plain.push('<');
                        i += 1;
                    }
                }
            }
            c => {
                plain.push(c);
                i += 1;
            }
        }
    }
    flush(&mut plain, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_paragraphs_and_emphasis() {
        assert_eq!(
            to_html("# Notes\n\nThe model reached **accuracy 0.9**.\nA *second* line."),
            "<h1>Notes</h1>\n<p>The model reached <strong>accuracy 0.9</strong>.\nA \
             <em>second</em> line.</p>\n"
        );
        assert_eq!(to_html("snake_case_name"), "<p>snake_case_name</p>\n");
        assert_eq!(to_html("a * b * c"), "<p>a * b * c</p>\n");
    }

    #[test]
    fn raw_html_is_text() {
        let html = to_html("<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
    }

    #[test]
    fn links_keep_only_safe_targets() {
        assert_eq!(
            to_html("[site](https://example.org/a?b=1) and [x](javascript:alert%281%29)"),
            "<p><a href=\"https://example.org/a?b=1\">site</a> and x</p>\n"
        );
        assert_eq!(
            to_html("![chart](plot.png \"title\")"),
            "<p><img src=\"plot.png\" alt=\"chart\"></p>\n"
        );
        assert_eq!(
            to_html("<https://example.org>"),
            "<p><a href=\"https://example.org\">https://example.org</a></p>\n"
        );
    }

    #[test]
    fn lists_tables_code_and_quotes() {
        assert_eq!(
            to_html("- first point\n- second point\n  - nested\n\n1. one\n2. two"),
            "<ul>\n<li>first point</li>\n<li>second point\n<ul>\n<li>nested</li>\n</ul>\n</li>\n\
             </ul>\n<ol>\n<li>one</li>\n<li>two</li>\n</ol>\n"
        );
        assert_eq!(
            to_html("| class | note |\n|---|--:|\n| cat | fine |\n| bird | <b> |"),
            "<table>\n<thead><tr><th>class</th><th style=\"text-align:right\">note</th></tr>\
             </thead>\n<tbody>\n<tr><td>cat</td><td style=\"text-align:right\">fine</td></tr>\n\
             <tr><td>bird</td><td style=\"text-align:right\">&lt;b&gt;</td></tr>\n</tbody>\n\
             </table>\n"
        );
        assert_eq!(
            to_html("```python\nif a < b:\n    pass\n```\n> quoted `code`\n\n---"),
            "<pre><code class=\"language-python\">if a &lt; b:\n    pass\n</code></pre>\n\
             <blockquote>\n<p>quoted <code>code</code></p>\n</blockquote>\n<hr>\n"
        );
    }
}
