//! The board drawn as SVG, for the export: rectangles, ellipses, diamonds, lines and arrows,
//! freehand strokes and text, read from the Excalidraw elements' JSON (position, size, angle,
//! points, colours, stroke width, opacity). A small renderer of the shapes' outlines, not
//! Excalidraw's hand-drawn look (its `exportToSvg` needs a browser).
//!
//! The elements are the candidate's data: text is written as escaped character data, never
//! markup, and a colour is used only if it is a `#` hex colour or a plain colour name (anything
//! else, such as `url(...)` or a quote, falls back to black or none), so no element can put
//! an attribute, a tag or a reference into the drawing.

use serde_json::Value;
use std::fmt::Write;

/// Space around the drawing, in pixels.
const MARGIN: f64 = 20.0;

/// One element's geometry and style, as far as the drawing needs them.
struct Shape<'a> {
    kind: &'a str,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    angle: f64,
    stroke: &'a str,
    fill: &'a str,
    stroke_width: f64,
    opacity: f64,
    points: Vec<(f64, f64)>,
    text: &'a str,
    font_size: f64,
    index: &'a str,
    id: &'a str,
}

fn num(e: &Value, key: &str, or: f64) -> f64 {
    e.get(key)
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite())
        .unwrap_or(or)
}

fn string<'a>(e: &'a Value, key: &str) -> &'a str {
    e.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `c` if it is safe to write into an attribute as a colour: `#` and 3 to 8 hex digits, or a
/// colour name of letters (`transparent` included); otherwise `or`.
fn colour<'a>(c: &'a str, or: &'a str) -> &'a str {
    let hex = c.len() >= 4
        && c.len() <= 9
        && c.starts_with('#')
        && c[1..].bytes().all(|b| b.is_ascii_hexdigit());
    let name = !c.is_empty() && c.len() <= 20 && c.bytes().all(|b| b.is_ascii_alphabetic());
    if hex || name {
        c
    } else {
        or
    }
}

fn shape(e: &Value) -> Option<Shape<'_>> {
    if e.get("isDeleted").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let points = e
        .get("points")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    let p = p.as_array()?;
                    let x = p.first()?.as_f64().filter(|v| v.is_finite())?;
                    let y = p.get(1)?.as_f64().filter(|v| v.is_finite())?;
                    Some((x, y))
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Shape {
        kind: string(e, "type"),
        x: num(e, "x", 0.0),
        y: num(e, "y", 0.0),
        w: num(e, "width", 0.0).max(0.0),
        h: num(e, "height", 0.0).max(0.0),
        angle: num(e, "angle", 0.0),
        stroke: colour(string(e, "strokeColor"), "#1e1e1e"),
        fill: colour(string(e, "backgroundColor"), "transparent"),
        stroke_width: num(e, "strokeWidth", 1.0).clamp(0.0, 50.0),
        opacity: num(e, "opacity", 100.0).clamp(0.0, 100.0) / 100.0,
        points,
        text: string(e, "text"),
        font_size: num(e, "fontSize", 20.0).clamp(1.0, 500.0),
        index: string(e, "index"),
        id: string(e, "id"),
    })
}

/// Escapes text for SVG character data or an attribute value.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Characters XML 1.0 does not allow at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The drawing's bounds: (min x, min y, max x, max y).
fn bounds(shapes: &[Shape<'_>]) -> (f64, f64, f64, f64) {
    let mut b = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for s in shapes {
        let mut grow = |x: f64, y: f64| {
            b = (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y));
        };
        grow(s.x, s.y);
        grow(s.x + s.w, s.y + s.h);
        for (px, py) in &s.points {
            grow(s.x + px, s.y + py);
        }
    }
    if b.0 > b.2 {
        (0.0, 0.0, 0.0, 0.0)
    } else {
        b
    }
}

/// The board's elements (each one element's JSON) drawn as one SVG document, in their
/// stacking order (Excalidraw's `index`, then id). Elements that are not JSON objects, or are
/// deleted, are left out.
pub fn render<'a>(elements: impl IntoIterator<Item = &'a str>) -> String {
    let values: Vec<Value> = elements
        .into_iter()
        .filter_map(|json| serde_json::from_str::<Value>(json).ok())
        .filter(Value::is_object)
        .collect();
    let mut shapes: Vec<Shape<'_>> = values.iter().filter_map(shape).collect();
    shapes.sort_by(|a, b| (a.index, a.id).cmp(&(b.index, b.id)));
    let (x0, y0, x1, y1) = bounds(&shapes);
    let (w, h) = (x1 - x0 + 2.0 * MARGIN, y1 - y0 + 2.0 * MARGIN);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="{:.2} {:.2} {w:.2} {h:.2}">"#,
        x0 - MARGIN,
        y0 - MARGIN,
    );
    let _ = writeln!(
        out,
        r##"<rect x="{:.2}" y="{:.2}" width="{w:.2}" height="{h:.2}" fill="#ffffff"/>"##,
        x0 - MARGIN,
        y0 - MARGIN
    );
    for s in &shapes {
        draw(&mut out, s);
    }
    out.push_str("</svg>\n");
    out
}

fn draw(out: &mut String, s: &Shape<'_>) {
    let (cx, cy) = (s.x + s.w / 2.0, s.y + s.h / 2.0);
    let style = format!(
        r#"stroke="{}" stroke-width="{:.2}" fill="{}" opacity="{:.2}" stroke-linecap="round" stroke-linejoin="round""#,
        s.stroke, s.stroke_width, s.fill, s.opacity
    );
    let turn = if s.angle != 0.0 {
        format!(
            r#" transform="rotate({:.3} {cx:.2} {cy:.2})""#,
            s.angle.to_degrees()
        )
    } else {
        String::new()
    };
    let polyline = |closed: bool| {
        let d: Vec<String> = s
            .points
            .iter()
            .map(|(px, py)| format!("{:.2},{:.2}", s.x + px, s.y + py))
            .collect();
        format!("M{}{}", d.join(" L"), if closed { " Z" } else { "" })
    };
    let _ = match s.kind {
        "rectangle" => writeln!(
            out,
            r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" {style}{turn}/>"#,
            s.x, s.y, s.w, s.h
        ),
        "ellipse" => writeln!(
            out,
            r#"<ellipse cx="{cx:.2}" cy="{cy:.2}" rx="{:.2}" ry="{:.2}" {style}{turn}/>"#,
            s.w / 2.0,
            s.h / 2.0
        ),
        "diamond" => writeln!(
            out,
            r#"<polygon points="{cx:.2},{:.2} {:.2},{cy:.2} {cx:.2},{:.2} {:.2},{cy:.2}" {style}{turn}/>"#,
            s.y,
            s.x + s.w,
            s.y + s.h,
            s.x
        ),
        "line" | "arrow" | "freedraw" if s.points.len() >= 2 => {
            // An open path: strokes only (Excalidraw fills only closed shapes).
            let open = style.replacen(&format!(r#"fill="{}""#, s.fill), r#"fill="none""#, 1);
            let _ = writeln!(out, r#"<path d="{}" {open}{turn}/>"#, polyline(false));
            if s.kind == "arrow" {
                arrowhead(out, s, &turn);
            }
            Ok(())
        }
        "text" => {
            let lines: Vec<&str> = s.text.split('\n').collect();
            let _ = writeln!(
                out,
                r#"<text x="{:.2}" y="{:.2}" font-family="sans-serif" font-size="{:.1}" fill="{}" opacity="{:.2}" dominant-baseline="text-before-edge"{turn}>"#,
                s.x, s.y, s.font_size, s.stroke, s.opacity
            );
            for (i, line) in lines.iter().enumerate() {
                let _ = writeln!(
                    out,
                    r#"<tspan x="{:.2}" dy="{}">{}</tspan>"#,
                    s.x,
                    if i == 0 {
                        "0".to_owned()
                    } else {
                        "1.25em".to_owned()
                    },
                    escape(line)
                );
            }
            writeln!(out, "</text>")
        }
        _ => Ok(()), // other kinds (frames, images, which the board refuses) are not drawn
    };
}

/// Two short strokes at the last point of an arrow, along its last segment.
fn arrowhead(out: &mut String, s: &Shape<'_>, turn: &str) {
    let n = s.points.len();
    let (ax, ay) = s.points[n - 2];
    let (bx, by) = s.points[n - 1];
    let (dx, dy) = (bx - ax, by - ay);
    let len = (dx * dx + dy * dy).sqrt();
    if len == 0.0 {
        return;
    }
    let (ux, uy) = (dx / len, dy / len);
    let size = (len / 2.0).min(15.0 + s.stroke_width * 2.0);
    let (tx, ty) = (s.x + bx, s.y + by);
    let wing = |side: f64| {
        let (c, si) = (0.5f64.cos(), (0.5f64 * side).sin());
        let (rx, ry) = (ux * c - uy * si, ux * si + uy * c);
        (tx - rx * size, ty - ry * size)
    };
    let (l, r) = (wing(1.0), wing(-1.0));
    let _ = writeln!(
        out,
        r#"<path d="M{:.2},{:.2} L{tx:.2},{ty:.2} L{:.2},{:.2}" stroke="{}" stroke-width="{:.2}" fill="none" opacity="{:.2}" stroke-linecap="round"{turn}/>"#,
        l.0, l.1, r.0, r.1, s.stroke, s.stroke_width, s.opacity
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_shape_is_drawn_and_text_stays_text() {
        let svg = render([
            r##"{"id":"a","type":"rectangle","x":0,"y":0,"width":100,"height":50,"strokeColor":"#1e1e1e","backgroundColor":"#ffc9c9","index":"a0"}"##,
            r#"{"id":"b","type":"ellipse","x":200,"y":0,"width":80,"height":40,"index":"a1"}"#,
            r#"{"id":"c","type":"diamond","x":0,"y":100,"width":60,"height":60,"angle":0.5,"index":"a2"}"#,
            r#"{"id":"d","type":"arrow","x":100,"y":25,"points":[[0,0],[100,0]],"index":"a3"}"#,
            r#"{"id":"e","type":"line","x":0,"y":200,"points":[[0,0],[50,10],[90,0]],"index":"a4"}"#,
            r#"{"id":"f","type":"freedraw","x":0,"y":300,"points":[[0,0],[1,1],[2,3]],"index":"a5"}"#,
            r#"{"id":"g","type":"text","x":0,"y":400,"text":"<script>alert(1)</script>\nsecond & line","index":"a6"}"#,
            r#"{"id":"h","type":"rectangle","x":0,"y":0,"width":5,"height":5,"isDeleted":true}"#,
            r#"{"id":"i","type":"rectangle","x":0,"y":0,"width":5,"height":5,"strokeColor":"red\" onload=\"x","index":"a7"}"#,
            "not json",
        ]);
        for needle in [
            "<rect x=\"0.00\" y=\"0.00\" width=\"100.00\" height=\"50.00\"",
            "fill=\"#ffc9c9\"",
            "<ellipse cx=\"240.00\"",
            "<polygon points=",
            "rotate(28.648",
            "M100.00,25.00 L200.00,25.00",
            "M0.00,200.00 L50.00,210.00 L90.00,200.00",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "second &amp; line",
        ] {
            assert!(svg.contains(needle), "{needle} in\n{svg}");
        }
        assert!(!svg.contains("<script"), "text is data, never markup");
        assert!(!svg.contains("onload"), "a colour cannot add an attribute");
        assert_eq!(
            svg.matches("<rect").count(),
            3,
            "background, a, i (h is deleted)"
        );
        assert_eq!(
            svg.matches("<path").count(),
            4,
            "arrow and its head, line, freedraw"
        );
    }
}
