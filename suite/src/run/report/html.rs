//! `report.html`: one self-contained page people look at. A summary per checker first
//! (outcomes, false accepts, data errors, privacy figures), then the matrix with filters,
//! then the case under the cursor: the card as a person sees it (chip images rendered to
//! PNG, see [`crate::run::render`]) beside the fields the checker read, mismatches highlighted,
//! and the APDU transcript with per-exchange timing.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::super::adapter::{Adapter, TrustMode};
use super::super::data::{FieldCheck, FieldStatus};
use super::super::render::Cards;
use super::super::{CaseResult, Outcome};
use super::{OUTCOMES, data, escape, profiles, shorten, summary};

/// The filter value of rows holding a data error.
const DATA_ERROR: &str = "DATA-ERROR";

/// One case as the page's script shows it.
#[derive(Serialize)]
struct CaseView<'a> {
    checker: &'a str,
    profile: &'a str,
    expected: String,
    actual: String,
    outcome: &'static str,
    false_accept: bool,
    missed_corruption: bool,
    false_reject: bool,
    data_error: bool,
    detail: &'a str,
    /// Whether the checker reported `data` at all.
    reported: bool,
    fields: Vec<FieldCheck>,
    /// `[command, response, microseconds]`, long APDUs shortened.
    transcript: Vec<(String, String, u64)>,
}

/// One image of a profile: role, key into the page's image table, size, note.
#[derive(Serialize)]
struct ImageRef {
    role: &'static str,
    key: usize,
    width: u32,
    height: u32,
    note: String,
}

/// The whole `report.html` page.
pub fn page(checkers: &[Adapter], results: &[CaseResult], cards: &Cards) -> String {
    let mut h = String::from(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>rclab conformance report</title>\n<style>\n",
        "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#f3f3f3}\n",
        "td.n{text-align:right}td.c{cursor:pointer}.PASS{background:#dfd}.FAIL{background:#fcc}.FA{background:#f66;font-weight:bold}.MC{background:#f9a}.FR{background:#f6c;font-weight:bold}.NA{background:#eee}.CRASH,.TIMEOUT,.BAD-OUTPUT{background:#fd9}.DE{background:#fc6;font-weight:bold}\n",
        ".bad{background:#f66;color:#fff;font-weight:bold}.warn{background:#fc6;font-weight:bold}\n",
        "#case{display:none;border-top:2px solid #888;margin-top:1em;padding-top:.5em}#card{display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap}\n",
        "figure{margin:0}figure img{border:1px solid #999;image-rendering:pixelated;max-width:480px}figcaption{font-size:12px;color:#555}\n",
        "tr.wrong td{background:#f99;font-weight:bold}tr.right td{background:#efe}tr.not_reported td{color:#777}tr.not_on_chip td{background:#ffd}\n",
        "#transcript td{font:12px monospace;word-break:break-all}pre{white-space:pre-wrap}\n",
        "</style></head><body>\n<h1>rclab conformance report</h1>\n"
    ));
    summary_table(&mut h, checkers, results);

    h.push_str("<h2>Matrix</h2>\n<p id=\"filters\">Show rows with: ");
    // LIMITATION only when a case has it: other runs' pages stay as they were.
    let limitation = results
        .iter()
        .any(|r| r.outcome == Outcome::Limitation)
        .then_some(Outcome::Limitation);
    for o in OUTCOMES
        .iter()
        .copied()
        .chain(limitation)
        .map(Outcome::as_str)
        .chain([DATA_ERROR])
    {
        let _ = write!(
            h,
            "<label><input type=\"checkbox\" class=\"f\" value=\"{o}\" checked> {o}</label> "
        );
    }
    h.push_str("</p>\n<table id=\"matrix\"><thead><tr><th>profile</th><th>expected</th>");
    for c in checkers {
        let _ = write!(h, "<th>{}</th>", escape(&c.name));
    }
    h.push_str("</tr></thead><tbody>\n");

    let mut cases = Vec::new();
    for (profile, first) in profiles(results) {
        let row: Vec<&CaseResult> = checkers
            .iter()
            .filter_map(|c| {
                results
                    .iter()
                    .find(|r| r.profile == profile && r.checker == c.name)
            })
            .collect();
        let mut tags: Vec<&str> = row.iter().map(|r| r.outcome.as_str()).collect();
        if row.iter().any(|r| r.data_error) {
            tags.push(DATA_ERROR);
        }
        let _ = write!(
            h,
            "<tr data-outcomes=\"{}\" data-profile=\"{}\"><td>{}</td><td>{}</td>",
            tags.join(" "),
            escape(profile),
            escape(profile),
            escape(&first.expected.to_string())
        );
        for r in row {
            let class = match r.outcome {
                Outcome::NotApplicable => "NA",
                Outcome::Limitation => "LIM",
                Outcome::Fail if r.false_accept => "FA",
                Outcome::Fail if r.missed_corruption => "MC",
                Outcome::Fail if r.false_reject => "FR",
                Outcome::Pass if r.data_error => "DE",
                o => o.as_str(),
            };
            let actual = r.actual.map(|a| a.to_string()).unwrap_or_default();
            let label = match (r.wrong_accept(), r.data_error) {
                (Some(wrong), _) => format!("{} ({})", r.outcome.as_str(), wrong.as_str()),
                (None, _) if r.false_reject => format!("{} (false reject)", r.outcome.as_str()),
                (None, true) => format!("{} (data error)", r.outcome.as_str()),
                (None, false) => r.outcome.as_str().to_owned(),
            };
            let _ = write!(
                h,
                "<td class=\"c {class}\" data-i=\"{}\">{} {}</td>",
                cases.len(),
                label,
                escape(&actual)
            );
            cases.push(case_view(r, cards));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n<p>Click a cell to see the case: the card, the fields read and the APDU transcript.</p>\n");
    h.push_str(concat!(
        "<section id=\"case\"><h2 id=\"case-title\"></h2><p id=\"case-verdict\"></p><p id=\"case-detail\"></p>\n",
        "<div id=\"card\"><div id=\"images\"></div><div><h3>Fields: chip against checker</h3><table id=\"fields\"><thead><tr><th>field</th><th>chip holds</th><th>checker read</th><th></th></tr></thead><tbody></tbody></table></div></div>\n",
        "<h3>Transcript</h3><table id=\"transcript\"><thead><tr><th>#</th><th>command</th><th>response</th><th>µs</th></tr></thead><tbody></tbody></table></section>\n",
    ));

    // Images: one table of distinct PNGs, and per profile the references into it.
    let mut png_keys: BTreeMap<&str, usize> = BTreeMap::new();
    let mut pngs: Vec<&str> = Vec::new();
    let mut profile_images: BTreeMap<&str, Vec<ImageRef>> = BTreeMap::new();
    for (profile, _) in profiles(results) {
        let Some(view) = cards.by_profile.get(profile) else {
            continue;
        };
        let refs = view
            .images
            .iter()
            .map(|img| {
                let key = *png_keys.entry(img.png.as_str()).or_insert_with(|| {
                    pngs.push(img.png.as_str());
                    pngs.len() - 1
                });
                ImageRef {
                    role: img.role,
                    key,
                    width: img.width,
                    height: img.height,
                    note: img.note.clone(),
                }
            })
            .collect();
        profile_images.insert(profile, refs);
    }
    for (id, value) in [
        ("cases", serde_json::to_string(&cases)),
        ("pngs", serde_json::to_string(&pngs)),
        ("profile-images", serde_json::to_string(&profile_images)),
    ] {
        // No `<` inside the script element: neither `</script>` nor `<!--` can end it.
        let json = value
            .unwrap_or_else(|_| "null".into())
            .replace('<', "\\u003c");
        let _ = writeln!(
            h,
            "<script type=\"application/json\" id=\"{id}\">{json}</script>"
        );
    }
    h.push_str(SCRIPT);
    h.push_str("</body></html>\n");
    h
}

/// The page's behaviour: filters and the case view.
const SCRIPT: &str = r#"<script>
const J=id=>JSON.parse(document.getElementById(id).textContent);
const cases=J('cases'),pngs=J('pngs'),images=J('profile-images');
function el(tag,text,cls){const e=document.createElement(tag);if(text!==undefined)e.textContent=text;if(cls)e.className=cls;return e;}
function show(i){const c=cases[i];document.getElementById('case').style.display='block';
document.getElementById('case-title').textContent=c.checker+' × '+c.profile;
document.getElementById('case-verdict').textContent='expected '+c.expected+', said '+(c.actual||'nothing')+': '+c.outcome+(c.false_accept?' (FALSE ACCEPT)':'')+(c.missed_corruption?' (MISSED CORRUPTION)':'')+(c.false_reject?' (FALSE REJECT)':'')+(c.data_error?' (DATA ERROR)':'');
document.getElementById('case-detail').textContent=c.detail;
const im=document.getElementById('images');im.replaceChildren();
for(const r of (images[c.profile]||[])){const f=el('figure');
if(pngs[r.key]){const img=el('img');img.src=pngs[r.key];img.className='card-image';img.dataset.role=r.role;img.alt=r.role;img.width=Math.min(r.width,480);f.append(img);}
f.append(el('figcaption',r.role+(r.width?' '+r.width+'×'+r.height:'')+' — '+r.note));im.append(f);}
const fb=document.querySelector('#fields tbody');fb.replaceChildren();
if(!c.reported){const tr=el('tr','', 'not_reported');tr.append(el('td','This checker reported no data (rclab.verdict/1 or no data object): not reported, not a failure.'));tr.firstChild.colSpan=4;fb.append(tr);}
for(const f of c.fields){const tr=el('tr',undefined,f.status);tr.append(el('td',f.field),el('td',f.chip??''),el('td',f.reported??''),el('td',f.status.replace('_',' ')));fb.append(tr);}
const tb=document.querySelector('#transcript tbody');tb.replaceChildren();
c.transcript.forEach((t,n)=>{const tr=el('tr');const us=el('td',String(t[2]));us.className='n';tr.append(el('td',String(n+1)),el('td','>>> '+t[0]),el('td','<<< '+t[1]),us);tb.append(tr);});
document.getElementById('case').scrollIntoView();}
document.querySelectorAll('td.c').forEach(td=>td.onclick=()=>show(+td.dataset.i));
function filter(){const on=[...document.querySelectorAll('.f:checked')].map(b=>b.value);
document.querySelectorAll('#matrix tbody tr').forEach(tr=>{tr.style.display=tr.dataset.outcomes.split(' ').some(o=>on.includes(o))?'':'none';});}
document.querySelectorAll('.f').forEach(b=>b.onchange=filter);
</script>
"#;

fn case_view<'a>(r: &'a CaseResult, cards: &Cards) -> CaseView<'a> {
    // A checker that reported nothing: show what the chip holds, each "not reported".
    let fields = if r.data.is_some() {
        r.fields.clone()
    } else {
        cards
            .by_profile
            .get(&r.profile)
            .and_then(|v| v.truth.as_ref())
            .map(|t| {
                t.flat()
                    .into_iter()
                    .map(|(field, chip)| FieldCheck {
                        field,
                        status: FieldStatus::NotReported,
                        reported: None,
                        chip: Some(chip),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    CaseView {
        checker: &r.checker,
        profile: &r.profile,
        expected: r.expected.to_string(),
        actual: r.actual.map(|a| a.to_string()).unwrap_or_default(),
        outcome: r.outcome.as_str(),
        false_accept: r.false_accept,
        missed_corruption: r.missed_corruption,
        false_reject: r.false_reject,
        data_error: r.data_error,
        detail: &r.detail,
        reported: r.data.is_some(),
        fields,
        transcript: r
            .transcript
            .iter()
            .map(|e| {
                let response = e
                    .response
                    .as_deref()
                    .map_or_else(|_| "(transport error)".to_owned(), shorten);
                (shorten(&e.command), response, e.micros)
            })
            .collect(),
    }
}

/// The summary table: one row per checker, `data-k` on each figure for tools and tests.
fn summary_table(h: &mut String, checkers: &[Adapter], results: &[CaseResult]) {
    let profiles = profiles(results).len();
    let _ = writeln!(
        h,
        "<p>{} cases: {} checker(s) × {profiles} profile(s).</p>\n<h2>Summary</h2>",
        results.len(),
        checkers.len()
    );
    h.push_str(concat!(
        "<table id=\"summary\"><thead><tr><th>checker</th><th>trust</th><th>PASS</th><th>FAIL</th><th>false accepts</th><th>missed corruptions</th><th>false rejects</th>",
        "<th>data errors</th><th>fields right / wrong / not reported</th><th>N/A</th><th>CRASH</th><th>TIMEOUT</th><th>BAD-OUTPUT</th>",
        "<th>read the face</th><th>read unneeded EFs</th><th>card number in clear</th><th>bytes read / needed</th></tr></thead><tbody>\n"
    ));
    for c in checkers {
        let mine: Vec<&CaseResult> = results.iter().filter(|r| r.checker == c.name).collect();
        let counts = summary(results, &c.name);
        let (false_accepts, missed_corruptions) = (counts.false_accepts, counts.missed_corruptions);
        let data = data::summary(results, &c.name);
        let audits: Vec<_> = mine
            .iter()
            .filter_map(|r| r.audit.as_ref())
            .filter(|a| a.bytes_read > 0)
            .collect();
        let trust = match c.trust {
            TrustMode::TestCa => "test_ca",
            TrustMode::Pinned => "pinned",
        };
        let fields = if data.cases_with_data == 0 {
            "not reported".to_owned()
        } else {
            format!(
                "{} / {} / {}",
                data.fields[0], data.fields[1], data.fields[2]
            )
        };
        let flag = |n: usize, class: &str| {
            if n > 0 {
                format!(" class=\"n {class}\"")
            } else {
                " class=\"n\"".to_owned()
            }
        };
        let _ = writeln!(
            h,
            concat!(
                "<tr data-checker=\"{name}\"><td>{name}</td><td>{trust}</td><td class=\"n\" data-k=\"pass\">{pass}</td>",
                "<td{fail_class} data-k=\"fail\">{fail}</td><td{fa_class} data-k=\"false-accepts\">{fa}</td><td{mc_class} data-k=\"missed-corruptions\">{mc}</td><td{fr_class} data-k=\"false-rejects\">{fr}</td>",
                "<td{de_class} data-k=\"data-errors\">{de}</td><td data-k=\"fields\">{fields}</td>",
                "<td class=\"n\">{na}</td><td class=\"n\">{crash}</td><td class=\"n\">{timeout}</td><td class=\"n\">{bad}</td>",
                "<td class=\"n\" data-k=\"face\">{face}</td><td class=\"n\" data-k=\"unneeded\">{unneeded}</td>",
                "<td{clear_class} data-k=\"clear\">{clear}</td><td class=\"n\">{read} / {needed}</td></tr>"
            ),
            name = escape(&c.name),
            trust = trust,
            pass = counts.pass,
            fail_class = flag(counts.fail, "warn"),
            fail = counts.fail,
            fa_class = flag(false_accepts, "bad"),
            fa = false_accepts,
            mc_class = flag(missed_corruptions, "warn"),
            mc = missed_corruptions,
            fr_class = flag(counts.false_rejects, "bad"),
            fr = counts.false_rejects,
            de_class = flag(data.data_errors, "warn"),
            de = data.data_errors,
            fields = fields,
            na = counts.not_applicable,
            crash = counts.crash,
            timeout = counts.timeout,
            bad = counts.bad_output,
            face = audits.iter().filter(|a| a.face_image_read).count(),
            unneeded = audits.iter().filter(|a| !a.unneeded_efs.is_empty()).count(),
            clear_class = flag(
                audits.iter().filter(|a| a.card_number_in_clear).count(),
                "bad"
            ),
            clear = audits.iter().filter(|a| a.card_number_in_clear).count(),
            read = audits.iter().map(|a| a.bytes_read).sum::<usize>(),
            needed = audits.iter().map(|a| a.bytes_needed).sum::<usize>(),
        );
    }
    h.push_str("</tbody></table>\n<p><strong>False accepts</strong>: forgery vectors called genuine (forged cards, and corrupted ones whose profile says <code>threat: forgery</code>). <strong>Missed corruptions</strong>: other corrupted or misbehaving cards called genuine. <strong>Data errors</strong>: genuine cards called genuine with a field read wrong (rclab.verdict/2 <code>data</code> against the chip). Privacy figures count cases.</p>\n");
    let out_of_scope: Vec<String> = checkers
        .iter()
        .filter(|c| c.out_of_scope > 0)
        .map(|c| format!("{} {}", escape(&c.name), c.out_of_scope))
        .collect();
    if !out_of_scope.is_empty() {
        let _ = writeln!(
            h,
            "<p id=\"out-of-scope\"><strong>Out of scope</strong> (profiles of a card kind the checker's <code>cards:</code> does not name; no case): {}.</p>",
            out_of_scope.join(", ")
        );
    }
}
