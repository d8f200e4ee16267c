//! The verification page's HTML, in Japanese and English: the form (`GET /verify`),
//! a report (the answer to the form's POST, which works without JavaScript), and a
//! refusal in plain language. The stylesheet and the small script are static files
//! embedded in the binary (`assets/`), served beside the page.
//!
//! ```text
//!   <header> title, language links (?lang=ja|en)
//!   <main>   [report: verdict (words, icon and colour) | seal image note
//!             details <dl>: signer, time, unchanged?, later revisions, time-stamp,
//!                           anchor, file hash, evidence
//!             <details> technical checks (table)]
//!            form: file, data (detached), submit; "nothing is stored" note
//! ```
//!
//! Every value from the upload or a certificate is HTML-escaped ([`esc`]).

use std::fmt::Write as _;

use super::{BadInput, Kind, Outcome, Report, Verdict};

/// The stylesheet (`GET /verify/verify.css`).
pub const CSS: &str = include_str!("assets/verify.css");
/// The script (`GET /verify/verify.js`): drag and drop, and the file names shown.
pub const JS: &str = include_str!("assets/verify.js");

/// The page's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// 日本語.
    Ja,
    /// English.
    En,
}

impl Lang {
    /// From `?lang=` when given, else the first of `ja`/`en` in `Accept-Language`
    /// (in the order the browser lists them), else English.
    pub fn choose(query: Option<&str>, accept_language: Option<&str>) -> Lang {
        match query {
            Some(q) if q.starts_with("ja") => return Lang::Ja,
            Some(q) if q.starts_with("en") => return Lang::En,
            _ => {}
        }
        let Some(al) = accept_language else {
            return Lang::En;
        };
        let mut tags: Vec<(f32, usize, &str)> = al
            .split(',')
            .enumerate()
            .map(|(i, item)| {
                let mut parts = item.split(';');
                let tag = parts.next().unwrap_or("").trim();
                let q = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                (q, i, tag)
            })
            .collect();
        tags.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, _, tag) in tags {
            let tag = tag.to_ascii_lowercase();
            if tag.starts_with("ja") {
                return Lang::Ja;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::En
    }

    fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
}

/// A word in each language.
fn t(lang: Lang, ja: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Ja => ja,
        Lang::En => en,
    }
}

/// HTML-escapes `s`.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// The evidence seam's answer (`crate::anchor::evidence::LogEvidence`'s JSON) in words:
/// anchored (by which TSAs, when, the record's link), its batch open (expected by), or
/// its anchors pending.
fn evidence_text(lang: Lang, e: &serde_json::Value) -> String {
    let anchors = |state: &str| -> Vec<String> {
        e["batch"]["anchors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|x| x["state"] == state)
                    .map(|x| {
                        let name = match x["name"].as_str() {
                            Some("self") => t(lang, "このサーバーのTSA", "this server's TSA"),
                            Some(n) => n,
                            None => "?",
                        };
                        // To the second, as every other time on the page.
                        match x["anchored_at"].as_str() {
                            Some(at) => match at.split_once('.') {
                                Some((secs, _)) => format!("{name}, {secs}Z"),
                                None => format!("{name}, {at}"),
                            },
                            None => name.to_owned(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let batch = e["batch"]["id"].as_u64().unwrap_or_default();
    match e["state"].as_str() {
        Some("anchored") => {
            let done = anchors("done").join(", ");
            let url = e["record_url"].as_str().unwrap_or_default();
            let text = match lang {
                Lang::Ja => {
                    format!("アンカー済み：バッチ {batch}（{done} によるタイムスタンプ）。")
                }
                Lang::En => format!("Anchored: batch {batch}, time-stamped by {done}."),
            };
            format!(
                "{} <a href=\"{}\" download>{}</a>",
                esc(&text),
                esc(url),
                t(
                    lang,
                    "証拠記録（.ers）をダウンロード",
                    "Download the evidence record (.ers)"
                )
            )
        }
        Some("open") => {
            let by = e["expected_by"].as_str().unwrap_or("?");
            esc(&match lang {
                Lang::Ja => format!("まだアンカーされていません。{by} までに見込まれます。"),
                Lang::En => format!("Not yet anchored, expected by {by}."),
            })
        }
        _ => {
            let pending = anchors("pending").join(", ");
            esc(&match lang {
                Lang::Ja => format!(
                    "バッチ {batch} に入りましたが、タイムスタンプ（{pending}）を待っています。"
                ),
                Lang::En => format!("In batch {batch}, waiting for its time-stamp ({pending})."),
            })
        }
    }
}

/// The plain-language message of input that cannot be checked.
pub(super) fn bad_input_message(b: BadInput, lang: Lang, limit: usize) -> String {
    let mb = limit / (1024 * 1024);
    match (b, lang) {
        (BadInput::Empty, Lang::Ja) => "ファイルが選ばれていないか、空のファイルです。確認したいファイルを選んでください。".to_owned(),
        (BadInput::Empty, Lang::En) => "No file was chosen, or the file is empty. Choose the file you want to check.".to_owned(),
        (BadInput::UnknownType, Lang::Ja) => "このファイルは確認できる形式ではありません。電子印付きのPDF、.p7s、.tsr/.tst、証拠記録 .ers のいずれかを選んでください。".to_owned(),
        (BadInput::UnknownType, Lang::En) => "This file is not one this page can check. Choose a sealed PDF, a .p7s seal, a .tsr/.tst time-stamp or an .ers evidence record.".to_owned(),
        (BadInput::PdfNotSigned, Lang::Ja) => "このPDFには電子印（電子署名）がありません。発行元から電子印付きのPDFを受け取っているか確認してください。".to_owned(),
        (BadInput::PdfNotSigned, Lang::En) => "This PDF carries no seal or signature. Check that you were sent the sealed copy.".to_owned(),
        (BadInput::DataMissing, Lang::Ja) => "この印、タイムスタンプまたは証拠記録は文書と別のファイルです。「対象の文書」にその文書も選んでください。".to_owned(),
        (BadInput::DataMissing, Lang::En) => "This seal, time-stamp or evidence record is kept apart from its document. Also choose the document under \"The document it is about\".".to_owned(),
        (BadInput::TooLarge, Lang::Ja) => format!("ファイルが大きすぎます。{mb} MB までのファイルを確認できます。"),
        (BadInput::TooLarge, Lang::En) => format!("The upload is too large: this page checks files of up to {mb} MB."),
        (BadInput::NotMultipart, Lang::Ja) => "アップロードを読み取れませんでした。フォームからファイルを選んで送ってください。".to_owned(),
        (BadInput::Busy, Lang::Ja) => "ただいま混み合っています。少し待ってからもう一度お試しください。".to_owned(),
        (BadInput::Busy, Lang::En) => "The service is busy. Please wait a moment and try again.".to_owned(),
        (BadInput::NotMultipart, Lang::En) => "The upload could not be read. Send the file with the form (multipart/form-data, field \"file\").".to_owned(),
    }
}

fn head(lang: Lang, title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<link rel=\"stylesheet\" href=\"/verify/verify.css\">\n\
         </head>\n<body>\n<header>\n<h1>{h1}</h1>\n\
         <nav aria-label=\"{nav}\"><a href=\"/verify?lang=ja\" lang=\"ja\" hreflang=\"ja\"{ja_cur}>日本語</a> \
         <a href=\"/verify?lang=en\" lang=\"en\" hreflang=\"en\"{en_cur}>English</a></nav>\n</header>\n<main>\n",
        code = lang.code(),
        title = esc(title),
        h1 = t(
            lang,
            "電子印・タイムスタンプの確認",
            "Check a sealed document"
        ),
        nav = t(lang, "言語", "Language"),
        ja_cur = if lang == Lang::Ja {
            " aria-current=\"page\""
        } else {
            ""
        },
        en_cur = if lang == Lang::En {
            " aria-current=\"page\""
        } else {
            ""
        },
    )
}

fn form(lang: Lang, limit: usize) -> String {
    format!(
        "<section class=\"upload\" aria-labelledby=\"upload-h\">\n<h2 id=\"upload-h\">{h}</h2>\n\
         <p>{intro}</p>\n\
         <form method=\"post\" action=\"/verify?lang={code}\" enctype=\"multipart/form-data\" id=\"verify-form\">\n\
         <div class=\"drop\" id=\"drop\">\n<label for=\"file\">{file_label}</label>\n\
         <input type=\"file\" id=\"file\" name=\"file\" required aria-describedby=\"file-hint\">\n\
         <p class=\"hint\" id=\"file-hint\">{file_hint}</p>\n</div>\n\
         <div class=\"field\">\n<label for=\"data\">{data_label}</label>\n\
         <input type=\"file\" id=\"data\" name=\"data\" aria-describedby=\"data-hint\">\n\
         <p class=\"hint\" id=\"data-hint\">{data_hint}</p>\n</div>\n\
         <button type=\"submit\">{submit}</button>\n</form>\n\
         <p class=\"privacy\">{privacy}</p>\n</section>\n",
        h = t(lang, "ファイルを選ぶ", "Choose the file"),
        intro = t(
            lang,
            "受け取った文書が本物か、発行後に変更されていないかを確認します。",
            "Find out whether a document you received is genuine and unchanged since it was sealed."
        ),
        code = lang.code(),
        file_label = t(
            lang,
            "確認するファイル（電子印付きPDF、.p7s、.tsr、.ers）",
            "File to check (sealed PDF, .p7s, .tsr, .ers)"
        ),
        file_hint = esc(&match lang {
            Lang::Ja => format!(
                "ここにドラッグ＆ドロップすることもできます。{} MB まで。",
                limit / (1024 * 1024)
            ),
            Lang::En => format!(
                "You can also drop it here. Up to {} MB.",
                limit / (1024 * 1024)
            ),
        }),
        data_label = t(
            lang,
            "対象の文書（.p7s、.tsr、.ers が別ファイルの場合）",
            "The document it is about (for a separate .p7s, .tsr or .ers)"
        ),
        data_hint = t(
            lang,
            "電子印付きPDFの場合は不要です。",
            "Not needed for a sealed PDF."
        ),
        submit = t(lang, "確認する", "Check"),
        privacy = t(
            lang,
            "送られたファイルは保存も記録もされません。確認の間だけ使われ、記録されるのはハッシュ値（SHA-256）だけです。",
            "Nothing you upload is stored or logged: the files are used for this check only, and only their hash (SHA-256) is recorded."
        ),
    )
}

fn tail() -> &'static str {
    "</main>\n<script src=\"/verify/verify.js\"></script>\n</body>\n</html>\n"
}

/// The empty page: the form.
pub fn render_page(lang: Lang, limit: usize) -> String {
    let mut s = head(lang, t(lang, "電子印の確認 — Hanko", "Verify — Hanko"));
    s.push_str(&form(lang, limit));
    s.push_str(tail());
    s
}

/// A refusal in plain language, with the form again.
pub fn render_error(lang: Lang, bad: BadInput, limit: usize) -> String {
    let mut s = head(
        lang,
        t(lang, "確認できません — Hanko", "Cannot check — Hanko"),
    );
    let _ = write!(
        s,
        "<section class=\"report verdict-unknown\" role=\"alert\">\n<h2>{h}</h2>\n<p class=\"message\">{m}</p>\n</section>\n",
        h = t(lang, "確認できませんでした", "This could not be checked"),
        m = esc(&bad_input_message(bad, lang, limit)),
    );
    s.push_str(&form(lang, limit));
    s.push_str(tail());
    s
}

/// The verdict's words and its sign (never colour alone).
fn verdict_words(lang: Lang, v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Genuine => (t(lang, "本物です", "Genuine"), "✓"),
        Verdict::Changed => (t(lang, "変更されています", "Changed"), "✗"),
        Verdict::Untrusted => (t(lang, "信頼できない発行元です", "Not trusted"), "!"),
        Verdict::Unknown => (t(lang, "判断できません", "Cannot tell"), "?"),
    }
}

fn verdict_explanation(lang: Lang, r: &Report) -> String {
    let who = r
        .signer
        .as_ref()
        .map(|s| s.organisation.clone().unwrap_or_else(|| s.subject.clone()))
        .unwrap_or_default();
    match (r.verdict, lang) {
        (Verdict::Genuine, Lang::Ja) if r.kind == Kind::EvidenceRecord => "この文書は証拠記録のアンカー（タイムスタンプ）の時刻に存在し、それ以降変更されていません。".to_owned(),
        (Verdict::Genuine, Lang::En) if r.kind == Kind::EvidenceRecord => "This document existed at the time its evidence record was anchored and has not changed since.".to_owned(),
        (Verdict::Genuine, Lang::Ja) if r.kind == Kind::TimeStamp => "この文書はタイムスタンプの時刻に存在し、それ以降変更されていません。".to_owned(),
        (Verdict::Genuine, Lang::En) if r.kind == Kind::TimeStamp => "This document existed at the time-stamp's time and has not changed since.".to_owned(),
        (Verdict::Genuine, Lang::Ja) => format!("この文書は「{who}」が電子印を押したもので、それ以降変更されていません。"),
        (Verdict::Genuine, Lang::En) => format!("This document was sealed by {who} and has not changed since."),
        (Verdict::Changed, Lang::Ja) => "この文書は電子印を押した後に変更されています。元の文書と同じではありません。発行元に確認してください。".to_owned(),
        (Verdict::Changed, Lang::En) => "This document was changed after it was sealed: it is not the document that was sealed. Ask the issuer for the original.".to_owned(),
        (Verdict::Untrusted, Lang::Ja) => "電子印は壊れていませんが、このサービスが信頼する発行元のものではありません。".to_owned(),
        (Verdict::Untrusted, Lang::En) => "The seal is intact, but it was not made by anyone this service trusts.".to_owned(),
        (Verdict::Unknown, Lang::Ja) => "このファイルの電子印を読み取れませんでした。".to_owned(),
        (Verdict::Unknown, Lang::En) => "The seal in this file could not be read.".to_owned(),
    }
}

fn row(s: &mut String, dt: &str, dd: &str) {
    let _ = writeln!(s, "<dt>{}</dt><dd>{}</dd>", esc(dt), dd);
}

/// A report, with the form again below it.
pub fn render_report(lang: Lang, r: &Report, limit: usize) -> String {
    let (words, sign) = verdict_words(lang, r.verdict);
    let mut s = head(lang, &format!("{words} — Hanko"));
    let v = match r.verdict {
        Verdict::Genuine => "genuine",
        Verdict::Changed => "changed",
        Verdict::Untrusted => "untrusted",
        Verdict::Unknown => "unknown",
    };
    let _ = write!(
        s,
        "<section class=\"report verdict-{v}\" aria-labelledby=\"verdict\">\n\
         <div class=\"verdict-row\">\n<div class=\"verdict\" data-verdict=\"{v}\">\n\
         <p class=\"sign\" aria-hidden=\"true\">{sign}</p>\n<h2 id=\"verdict\">{words}</h2>\n\
         <p class=\"explain\">{ex}</p>\n</div>\n{picture}</div>\n",
        ex = esc(&verdict_explanation(lang, r)),
        picture = r
            .seal_picture
            .as_deref()
            .map(|src| format!(
                "<figure class=\"seal-picture\"><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>\n",
                esc(src),
                t(lang, "文書の印影", "The seal's picture in the document"),
                t(lang, "印影（電子印に含まれるもの）", "The seal's picture, as sealed"),
            ))
            .unwrap_or_default(),
    );
    let _ = writeln!(
        s,
        "<h3>{}</h3>\n<dl class=\"details\">",
        t(lang, "詳細", "Details")
    );
    if let Some(sig) = &r.signer {
        let claimed = if sig.verified {
            ""
        } else {
            t(lang, "（自称・未確認）", " (claimed, not verified)")
        };
        if let Some(o) = &sig.organisation {
            row(
                &mut s,
                t(lang, "発行元", "Issued by"),
                &format!("{}{}", esc(o), claimed),
            );
        }
        row(
            &mut s,
            t(lang, "証明書の主体者", "Certificate subject"),
            &format!("{}{}", esc(&sig.subject), claimed),
        );
        row(
            &mut s,
            t(lang, "証明書の発行者", "Certificate issuer"),
            &esc(&sig.issuer),
        );
        row(
            &mut s,
            t(lang, "証明書の有効期間", "Certificate valid"),
            &format!("{} – {}", esc(&sig.not_before), esc(&sig.not_after)),
        );
    }
    if let Some(at) = &r.sealed_at {
        let source = match (r.kind, r.verdict, r.time_source) {
            (Kind::TimeStamp | Kind::EvidenceRecord, _, _) | (_, _, None) => "",
            (_, Verdict::Genuine, Some("time-stamp")) => {
                t(lang, "（タイムスタンプによる）", " (by the time-stamp)")
            }
            (_, Verdict::Genuine, Some(_)) => t(
                lang,
                "（押印者の申告、タイムスタンプなし）",
                " (the sealer's claim; no time-stamp)",
            ),
            (_, _, Some(_)) => t(lang, "（申告、未確認）", " (claimed, not verified)"),
        };
        let label = if r.kind == Kind::EvidenceRecord {
            t(lang, "アンカーの時刻", "Anchored at")
        } else if r.kind == Kind::TimeStamp {
            t(lang, "タイムスタンプの時刻", "Time-stamped at")
        } else {
            t(lang, "押印日時", "Sealed at")
        };
        row(&mut s, label, &format!("{}{}", esc(at), source));
    }
    if let Some(u) = r.document_unchanged {
        let text = match (u, r.kind.is_existence()) {
            (true, false) => t(
                lang,
                "はい、押印後に変更されていません",
                "Yes, unchanged since it was sealed",
            ),
            (false, false) => t(
                lang,
                "いいえ、押印後に変更されています",
                "No, it was changed after it was sealed",
            ),
            (true, true) => t(
                lang,
                "はい、タイムスタンプ後に変更されていません",
                "Yes, unchanged since it was time-stamped",
            ),
            (false, true) => t(
                lang,
                "いいえ、タイムスタンプの対象とは異なります",
                "No, it is not the document that was time-stamped",
            ),
        };
        row(
            &mut s,
            t(lang, "文書は変更されていないか", "Document unchanged"),
            text,
        );
    }
    if let Some(n) = r.bytes_after_seal {
        let text = if n == 0 {
            t(lang, "ありません", "None").to_owned()
        } else {
            match lang {
                Lang::Ja => format!(
                    "押印後に {n} バイトの追加（後の版）があります。押印された版そのものは変更されていません。"
                ),
                Lang::En => format!(
                    "{n} bytes were added after the seal (a later revision); the sealed revision itself is unchanged."
                ),
            }
        };
        row(
            &mut s,
            t(lang, "押印後の追加", "Added after the seal"),
            &esc(&text),
        );
    }
    if let Some(ts) = &r.time_stamp {
        row(
            &mut s,
            t(lang, "タイムスタンプ", "Time-stamp"),
            &format!("{} — {}", esc(&ts.time), esc(&ts.tsa)),
        );
    }
    if let Some(a) = &r.trust_anchor {
        row(
            &mut s,
            t(lang, "信頼の起点（トラストアンカー）", "Trust anchor"),
            &esc(a),
        );
    }
    let file = match &r.file.name {
        Some(n) => format!("{} ({} bytes)", esc(n), r.file.size),
        None => format!("{} bytes", r.file.size),
    };
    row(&mut s, t(lang, "ファイル", "File"), &file);
    row(
        &mut s,
        "SHA-256",
        &format!("<code>{}</code>", esc(&r.file.sha256)),
    );
    let evidence = match &r.evidence {
        Some(e) => evidence_text(lang, e),
        None => esc(t(
            lang,
            "記録されていません（このファイルはまだアンカーされていません）",
            "None recorded (this file has not been anchored)",
        )),
    };
    row(
        &mut s,
        t(lang, "証拠記録（アンカー）", "Evidence record (anchoring)"),
        &evidence,
    );
    s.push_str("</dl>\n");
    if r.kind == Kind::Pdf && r.seal_picture.is_none() {
        let _ = writeln!(
            s,
            "<p class=\"note\">{}</p>",
            t(
                lang,
                "印影の画像は、検証された押印が文書全体を覆う目に見える印の場合にだけ表示します。PDFビューアで文書をご覧ください。",
                "The seal's picture is shown here only for a visible seal that verified and covers the whole file; open the PDF in a viewer to see it."
            )
        );
    }
    let _ = write!(
        s,
        "<details class=\"checks\">\n<summary>{sum}</summary>\n<table>\n<thead><tr><th scope=\"col\">{c}</th><th scope=\"col\">{o}</th><th scope=\"col\">{d}</th></tr></thead>\n<tbody>\n",
        sum = t(lang, "技術的な確認項目", "Technical checks"),
        c = t(lang, "項目", "Check"),
        o = t(lang, "結果", "Outcome"),
        d = t(lang, "内容", "Detail"),
    );
    for c in &r.checks {
        let o = match c.outcome {
            Outcome::Pass => t(lang, "合格", "pass"),
            Outcome::Fail => t(lang, "不合格", "FAIL"),
            Outcome::NotChecked => t(lang, "未確認", "not checked"),
            Outcome::Warning => t(lang, "注意", "warning"),
        };
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(c.name),
            o,
            esc(&c.detail)
        );
    }
    let _ = write!(s, "</tbody>\n</table>\n");
    if !r.chain.is_empty() {
        let _ = writeln!(
            s,
            "<p>{}: {}</p>",
            t(lang, "証明書チェーン", "Chain"),
            esc(&r.chain.join(" ← "))
        );
    }
    let _ = writeln!(
        s,
        "<p>{}: {}</p>",
        t(lang, "概要", "Summary"),
        esc(&r.summary)
    );
    s.push_str("</details>\n</section>\n");
    s.push_str(&form(lang, limit));
    s.push_str(tail());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_from_query_then_accept_language() {
        assert_eq!(Lang::choose(Some("ja"), Some("en")), Lang::Ja);
        assert_eq!(
            Lang::choose(None, Some("ja-JP,ja;q=0.9,en;q=0.8")),
            Lang::Ja
        );
        assert_eq!(
            Lang::choose(None, Some("en-US,en;q=0.9,ja;q=0.8")),
            Lang::En
        );
        assert_eq!(Lang::choose(None, Some("fr, ja;q=0.5, en;q=0.9")), Lang::En);
        assert_eq!(Lang::choose(None, None), Lang::En);
    }

    #[test]
    fn uploaded_names_are_escaped() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
