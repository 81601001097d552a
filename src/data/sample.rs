//! A deterministic generator of Google Local-shaped data: the walkthrough's embedded data set and the
//! benchmarks' large files.
//!
//! `write_sample` writes `review-Vermont.json` and `meta-Vermont.json` in the exact Google Local 2021
//! schema (every meta field), with the phenomena the walkthrough must find: ads (URLs, phone numbers,
//! coupon codes, discounts), irrelevant text, rants without a visit, spam and junk (empty, one word,
//! emoji only, repeated characters), "(Translated by Google) ... (Original) ..." wrappers, null texts,
//! exact duplicate reviews and meta rows, reviews of businesses missing from the meta file, and
//! optionally malformed lines. Output depends only on the parameters (chunks of reviews are generated in
//! parallel from per-chunk seeds), and the summary counts what was injected so tests can check the
//! loader against it.

use crate::output::AtomicFile;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde_json::json;
use crate::moderation::PerLabel;
use crate::rng::SplitMix64;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleParams {
    /// Review lines to write (duplicates and malformed lines included).
    pub reviews: usize,
    /// Distinct businesses (default: one per 40 reviews, at least 30).
    pub businesses: Option<usize>,
    /// Seed of the generator.
    pub seed: u64,
    /// Malformed review lines to insert (the real data has them; pandas' reader dies on them).
    pub malformed: usize,
    /// File name stem after `review-` / `meta-` (the seed used Vermont).
    pub state: String,
    /// Also write `truth-<state>.csv`: every generated text with the labels its kind implies, in the gold
    /// format of `revmod label-eval` (text, relevant, ads, irrelevant, non_visit, spam; empty = unknown).
    pub truth: bool,
}

impl Default for SampleParams {
    fn default() -> Self {
        SampleParams { reviews: 3000, businesses: None, seed: 42, malformed: 2, state: "Vermont".into(), truth: true }
    }
}

impl SampleParams {
    /// Checks the parameters before any work ([`crate::params`]): `businesses`, when given, at least 1.
    pub fn check(&self) -> Result<&Self, crate::params::ParamError> {
        if let Some(b) = self.businesses {
            crate::params::nonzero("businesses", b)?;
        }
        Ok(self)
    }
}

/// The kind of text a generated review carries (what a good labeler should find).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A genuine review of the place.
    Relevant,
    /// A review that advertises (URL, phone, coupon code, discount).
    Ad,
    /// Text about something else.
    Irrelevant,
    /// A complaint without a visit.
    NonVisitRant,
    /// Junk: empty, one word, emoji, repeated characters, gibberish.
    Spam,
    /// A genuine review wrapped in Google's translation markers.
    Translated,
    /// `"text": null` (rating only).
    NullText,
}

/// Counts of what was written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleSummary {
    /// Review file written.
    pub review_path: PathBuf,
    /// Meta file written.
    pub meta_path: PathBuf,
    /// Review lines written (all of them).
    pub review_lines: usize,
    /// Meta lines written (all of them).
    pub meta_lines: usize,
    /// Exact repeats of an earlier review line.
    pub duplicate_reviews: usize,
    /// Exact repeats of an earlier meta line.
    pub duplicate_meta: usize,
    /// Malformed review lines.
    pub malformed: usize,
    /// Reviews (non-duplicate, well-formed) of a business absent from the meta file.
    pub orphan_reviews: usize,
    /// The truth file (`truth-<state>.csv`) when one was written.
    pub truth_path: Option<PathBuf>,
    /// Reviews per kind (non-duplicate, well-formed).
    pub kinds: Vec<(Kind, usize)>,
}

/// The generator's random choices, on the crate's one seeded RNG ([`crate::rng::SplitMix64`]).
#[derive(Clone)]
struct Rng(SplitMix64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(SplitMix64::new(seed ^ 0x9E37_79B9_7F4A_7C15))
    }
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: usize) -> usize {
        ((self.next() >> 11) as u128 * n as u128 >> 53) as usize
    }
    fn unit(&mut self) -> f64 {
        self.0.next_f64()
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

struct Family {
    categories: &'static [&'static str],
    things: &'static [&'static str],
    praise: &'static [&'static str],
    gripes: &'static [&'static str],
    misc: &'static [(&'static str, &'static [&'static str])],
    hours: &'static str,
}

const FAMILIES: &[Family] = &[
    Family {
        categories: &["Restaurant", "Diner", "American restaurant", "Pizza restaurant", "Breakfast restaurant", "Mexican restaurant", "Italian restaurant"],
        things: &["pancakes", "burger", "maple syrup", "pizza", "fries", "soup", "omelette", "tacos", "pasta", "coffee"],
        praise: &["was delicious", "came out hot and fast", "was the best we've had in Vermont", "was perfectly cooked", "tasted homemade"],
        gripes: &["was cold", "took forever", "was overpriced", "was bland", "came out wrong"],
        misc: &[("Service options", &["Takeout", "Dine-in", "Delivery"]), ("Offerings", &["Comfort food", "Vegetarian options", "Kids' menu"]), ("Payments", &["Credit cards", "Debit cards"])],
        hours: "7AM–9PM",
    },
    Family {
        categories: &["Coffee shop", "Cafe", "Bakery"],
        things: &["latte", "croissant", "espresso", "maple scone", "cold brew", "bagel"],
        praise: &["was excellent", "was fresh", "made my morning", "was just right"],
        gripes: &["was burnt", "was stale", "was lukewarm"],
        misc: &[("Service options", &["Takeout", "Dine-in"]), ("Amenities", &["Wi-Fi", "Good for working on laptop"])],
        hours: "6:30AM–3PM",
    },
    Family {
        categories: &["Hotel", "Inn", "Bed & breakfast", "Motel", "Ski resort"],
        things: &["room", "bed", "breakfast", "view of the mountains", "front desk", "pool", "lift line"],
        praise: &["was spotless", "was comfortable", "was wonderful", "exceeded expectations"],
        gripes: &["smelled musty", "was noisy", "was dirty", "was disappointing"],
        misc: &[("Amenities", &["Free Wi-Fi", "Free parking", "Pool"]), ("Accessibility", &["Wheelchair accessible entrance"])],
        hours: "Open 24 hours",
    },
    Family {
        categories: &["Auto repair shop", "Tire shop", "Car dealer", "Gas station"],
        things: &["oil change", "brake job", "inspection", "tires", "estimate", "mechanic"],
        praise: &["was honest and quick", "was fairly priced", "was done same day", "was explained clearly"],
        gripes: &["took three days", "cost double the quote", "was done sloppily"],
        misc: &[("Service options", &["Onsite services"]), ("Payments", &["Checks", "Credit cards"])],
        hours: "8AM–5PM",
    },
    Family {
        categories: &["Grocery store", "Supermarket", "Farmers' market", "Convenience store", "Pharmacy"],
        things: &["produce", "cheese selection", "checkout line", "deli", "local cider", "pharmacist"],
        praise: &["was fresh and local", "was well stocked", "was quick", "was very helpful"],
        gripes: &["was picked over", "was slow", "was expensive"],
        misc: &[("Service options", &["Curbside pickup", "In-store shopping"]), ("Accessibility", &["Wheelchair accessible parking lot"])],
        hours: "7AM–10PM",
    },
    Family {
        categories: &["Hair salon", "Barber shop", "Gym", "Dentist", "Veterinarian", "Bank"],
        things: &["haircut", "appointment", "staff", "cleaning", "trainer", "teller", "waiting room"],
        praise: &["was professional", "was friendly and thorough", "was on time", "was great with kids"],
        gripes: &["was rushed", "ran an hour late", "was rude"],
        misc: &[("Accessibility", &["Wheelchair accessible entrance"]), ("Planning", &["Appointment required"])],
        hours: "9AM–6PM",
    },
    Family {
        categories: &["Park", "Hiking area", "Museum", "Brewery", "Tourist attraction", "Ski area"],
        things: &["trail", "exhibit", "beer flight", "foliage", "parking lot", "tour", "views"],
        praise: &["was stunning", "was worth the drive", "was beautiful in October", "was a must see"],
        gripes: &["was crowded", "was closed early", "was poorly marked"],
        misc: &[("Highlights", &["Great views", "Family friendly"]), ("Amenities", &["Restroom"])],
        hours: "10AM–6PM",
    },
    Family {
        categories: &["Cell phone store", "Internet service provider", "Electronics store"],
        things: &["phone plan", "repair", "customer service", "router", "upgrade"],
        praise: &["was sorted out fast", "was explained patiently", "was a fair deal"],
        gripes: &["was a nightmare", "never got fixed", "was a rip off"],
        misc: &[("Service options", &["In-store pickup"]), ("Payments", &["Credit cards"])],
        hours: "10AM–7PM",
    },
];

const TOWNS: &[(&str, &str)] = &[
    ("Burlington", "05401"), ("Montpelier", "05602"), ("Rutland", "05701"), ("Stowe", "05672"),
    ("Brattleboro", "05301"), ("Middlebury", "05753"), ("St Johnsbury", "05819"), ("Bennington", "05201"),
    ("Barre", "05641"), ("Winooski", "05404"), ("Essex Junction", "05452"), ("Manchester", "05254"),
];
const ADJ: &[&str] = &["Green Mountain", "Maple", "Champlain", "Lakeside", "Old Mill", "Covered Bridge", "Red Barn", "Birch", "Summit", "Valley", "Northern", "Village"];
const STREETS: &[&str] = &["Main St", "Church St", "Pearl St", "State St", "Elm St", "Route 100", "Mountain Rd", "College St", "Maple Ave"];
const FIRST: &[&str] = &["Emma", "Liam", "Olivia", "Noah", "Ava", "Mason", "Sophia", "Lucas", "Mia", "Ethan", "Chloe", "Jack", "Nora", "Owen", "Grace", "Wyatt", "Ruth", "Carlos", "Aiko", "Priya"];
const LAST: &[&str] = &["Smith", "Johnson", "Brown", "Lee", "Garcia", "Miller", "Davis", "Martin", "Clark", "Lewis", "Walker", "Young", "Nguyen", "Patel", "Kim", "Rossi"];
const OPENERS: &[&str] = &["Stopped in on a Saturday.", "We came here for my mom's birthday.", "Visited last week with friends.", "First time here.", "We go here every few weeks.", "Came in after skiing.", ""];
const CLOSERS: &[&str] = &["Will be back!", "Highly recommend.", "Worth a stop.", "Would not return.", "Five stars from us.", "Can't wait to come back.", ""];
const STAFF: &[&str] = &["The staff were friendly.", "Service was attentive.", "Our server was great.", "The owner said hi to everyone.", "Staff seemed overwhelmed.", "Parking was easy.", "Clean and cozy inside."];
const AD_LINES: &[&str] = &[
    "Visit www.{slug}deals.com for more!",
    "Call now (802) 555-{num4} to book your spot!!",
    "Use code SAVE{pct} for {pct}% off your next order.",
    "Follow us at https://instagram.com/{slug} for daily specials",
    "Get {pct}% OFF this week only, text VT{num4} to 55555!",
    "Best prices in Vermont! Check out http://bit.ly/{slug}{num4} now",
    "DM me for cheap followers and reviews, whatsapp +1 802 555 {num4}",
];
const IRRELEVANT: &[&str] = &[
    "Does anyone know a good plumber in the area? Our basement flooded again.",
    "Vote for Jim in November, he will fix the roads!",
    "My cousin's wedding was beautiful last weekend, congrats to the happy couple.",
    "The weather in Vermont this year has been crazy, snow in May.",
    "This review is about the pizza place across the street, which is much better.",
    "Happy Fourth of July everyone! Stay safe.",
    "I am writing this to test my new phone keyboard.",
    "Lost dog near the highway exit, brown lab, answers to Max. Please call if seen.",
];
const RANTS: &[&str] = &[
    "Never been here but I heard the owner is rude. Won't go.",
    "Called three times and nobody ever answered the phone. Terrible business.",
    "My friend said they overcharge everyone. Avoid!",
    "Didn't go inside, the line was too long and it looked dirty from the parking lot.",
    "I will never go here after what I read online about them.",
    "Haven't visited but the prices on their website are a joke.",
    "Drove past and it looked closed, total waste of time, zero stars.",
];
const SPAM: &[&str] = &[
    "", "good", "ok", "Nice", "👍", "👍👍👍", "😀😀", "aaaaaaaa", "Greatttttt!!!!!!", "asdf qwer zxcv",
    "lol", ".", "5 stars", "!!!!!!!", "hmm", "nice nice nice nice nice nice", "jjjjjj kkkkk", "🔥🔥🔥🔥",
];
const FOREIGN: &[(&str, &str)] = &[
    ("Very good pizza and friendly service", "Muy buena pizza y servicio amable"),
    ("Beautiful place, we loved the view", "Endroit magnifique, nous avons adoré la vue"),
    ("The coffee was excellent", "Der Kaffee war ausgezeichnet"),
    ("Clean rooms and kind staff", "Quartos limpos e funcionários gentis"),
    ("Delicious food, reasonable prices", "Cibo delizioso, prezzi ragionevoli"),
];
const RESPONSES: &[&str] = &[
    "Thank you for your kind words! We hope to see you again soon.",
    "We're sorry to hear about your experience. Please call us so we can make it right.",
    "Thanks for stopping by!",
];

struct Business {
    gmap_id: String,
    name: String,
    family: usize,
}

fn hex16(r: &mut Rng) -> String {
    format!("{:016x}", r.next())
}

fn businesses(n: usize, seed: u64) -> Vec<Business> {
    let mut r = Rng::new(seed ^ 0xB05);
    (0..n)
        .map(|i| {
            let family = r.below(FAMILIES.len());
            let cat = *r.pick(FAMILIES[family].categories);
            let name = match r.below(3) {
                0 => format!("{} {}", r.pick(ADJ), cat),
                1 => format!("{}'s {}", r.pick(FIRST), cat),
                _ => format!("The {} {} {}", r.pick(ADJ), r.pick(LAST), cat),
            };
            // gmap ids look like Google's: two 64-bit hex halves. The index keeps them unique.
            let gmap_id = format!("0x{:08x}{:08x}:0x{}", 0x89e0_0000u32 + (i as u32 >> 16), r.next() as u32, hex16(&mut r));
            Business { gmap_id, name, family }
        })
        .collect()
}

fn meta_line(b: &Business, all: &[Business], r: &mut Rng) -> String {
    let fam = &FAMILIES[b.family];
    let (town, zip) = *r.pick(TOWNS);
    let mut cats = vec![(*r.pick(fam.categories)).to_string()];
    if r.chance(0.5) {
        let c = (*r.pick(fam.categories)).to_string();
        if !cats.contains(&c) {
            cats.push(c);
        }
    }
    let hours = if r.chance(0.8) {
        let days = ["Thursday", "Friday", "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday"];
        json!(days.iter().map(|d| json!([d, if *d == "Sunday" && r.chance(0.4) { "Closed" } else { fam.hours }])).collect::<Vec<_>>())
    } else {
        serde_json::Value::Null
    };
    let misc = if r.chance(0.85) {
        let mut m = serde_json::Map::new();
        for (k, vals) in fam.misc {
            if r.chance(0.8) {
                let take = 1 + r.below(vals.len());
                m.insert((*k).to_string(), json!(vals[..take]));
            }
        }
        serde_json::Value::Object(m)
    } else {
        serde_json::Value::Null
    };
    let related: Vec<&str> = (0..r.below(5)).map(|_| r.pick(all).gmap_id.as_str()).filter(|g| *g != b.gmap_id).collect();
    let state = match r.below(5) {
        0 => json!(null),
        1 => json!("Permanently closed"),
        2 => json!(format!("Closed ⋅ Opens {}", fam.hours.split('–').next().unwrap_or("9AM"))),
        _ => json!(format!("Open ⋅ Closes {}", fam.hours.split('–').nth(1).unwrap_or("9PM"))),
    };
    json!({
        "name": b.name,
        "address": format!("{}, {} {}, {}, VT {}", b.name, 1 + r.below(999), r.pick(STREETS), town, zip),
        "gmap_id": b.gmap_id,
        "description": if r.chance(0.5) { json!(format!("{} in {} serving locals and visitors.", cats[0], town)) } else { json!(null) },
        "latitude": 42.73 + r.unit() * 2.27,
        "longitude": -73.43 + r.unit() * 1.9,
        "category": cats,
        "avg_rating": (30.0 + r.unit() * 20.0).round() / 10.0,
        "num_of_reviews": 1 + r.below(800),
        "price": match r.below(4) { 0 => json!(null), 1 => json!("$"), 2 => json!("$$"), _ => json!("$$$") },
        "hours": hours,
        "MISC": misc,
        "state": state,
        "relative_results": if related.is_empty() { json!(null) } else { json!(related) },
        "url": format!("https://www.google.com/maps/place//data=!4m2!3m1!1s{}?authuser=-1&hl=en&gl=us", b.gmap_id),
    })
    .to_string()
}

fn genuine(r: &mut Rng, fam: &Family, good: bool) -> String {
    let mut parts: Vec<String> = Vec::new();
    let o = *r.pick(OPENERS);
    if !o.is_empty() {
        parts.push(o.to_string());
    }
    let thing = r.pick(fam.things);
    let verdict = if good { r.pick(fam.praise) } else { r.pick(fam.gripes) };
    parts.push(format!("The {thing} {verdict}."));
    if r.chance(0.6) {
        parts.push((*r.pick(STAFF)).to_string());
    }
    if r.chance(0.3) {
        let t2 = r.pick(fam.things);
        parts.push(format!("Also tried the {t2}, it {}.", if good { r.pick(fam.praise) } else { r.pick(fam.gripes) }));
    }
    let c = *r.pick(CLOSERS);
    if !c.is_empty() {
        parts.push(c.to_string());
    }
    parts.join(" ")
}

fn fill(template: &str, slug: &str, r: &mut Rng) -> String {
    template
        .replace("{slug}", slug)
        .replace("{num4}", &format!("{:04}", r.below(10000)))
        .replace("{pct}", &(*r.pick(&[10, 15, 20, 25, 30, 50])).to_string())
}

fn review_text(kind: Kind, b: &Business, r: &mut Rng) -> (Option<String>, i64) {
    let fam = &FAMILIES[b.family];
    let slug: String = b.name.to_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect();
    match kind {
        Kind::Relevant => {
            let good = r.chance(0.75);
            (Some(genuine(r, fam, good)), if good { 4 + r.below(2) as i64 } else { 1 + r.below(3) as i64 })
        }
        Kind::Ad => {
            let ad = fill(*r.pick(AD_LINES), &slug, r);
            let text = if r.chance(0.5) { format!("{} {}", genuine(r, fam, true), ad) } else { ad };
            (Some(text), 5)
        }
        Kind::Irrelevant => (Some((*r.pick(IRRELEVANT)).to_string()), 1 + r.below(5) as i64),
        Kind::NonVisitRant => (Some((*r.pick(RANTS)).to_string()), 1),
        Kind::Spam => (Some((*r.pick(SPAM)).to_string()), 1 + r.below(5) as i64),
        Kind::Translated => {
            let (en, orig) = *r.pick(FOREIGN);
            (Some(format!("(Translated by Google) {en}\n\n(Original)\n{orig}")), 4 + r.below(2) as i64)
        }
        Kind::NullText => (None, 1 + r.below(5) as i64),
    }
}

/// The gold values a kind implies, per label; None where the kind does not decide (an ad may or may not also
/// describe a visit). None for a kind without a text.
pub fn kind_truth(kind: Kind) -> Option<PerLabel<Option<bool>>> {
    let (f, t) = (Some(false), Some(true));
    // relevant, ads, irrelevant, non_visit, spam ([`Label::ALL`](crate::moderation::Label::ALL) order)
    Some(PerLabel(match kind {
        Kind::Relevant | Kind::Translated => [t, f, f, f, f],
        Kind::Ad => [None, t, f, f, f],
        Kind::Irrelevant => [f, f, t, f, f],
        Kind::NonVisitRant => [f, f, f, t, f],
        Kind::Spam => [f, f, f, f, t],
        Kind::NullText => return None,
    }))
}

/// Appends one CSV row of the truth file.
fn truth_row(out: &mut String, text: &str, kind: Kind) {
    let Some(t) = kind_truth(kind) else { return };
    out.push('"');
    out.push_str(&text.replace('"', "\"\""));
    out.push('"');
    for v in t.0 {
        out.push(',');
        if let Some(b) = v {
            out.push(if b { '1' } else { '0' });
        }
    }
    out.push('\n');
}

fn pick_kind(r: &mut Rng) -> Kind {
    let u = r.unit();
    match u {
        _ if u < 0.60 => Kind::Relevant,
        _ if u < 0.66 => Kind::Ad,
        _ if u < 0.71 => Kind::Irrelevant,
        _ if u < 0.76 => Kind::NonVisitRant,
        _ if u < 0.84 => Kind::Spam,
        _ if u < 0.87 => Kind::Translated,
        _ => Kind::NullText,
    }
}

const CHUNK: usize = 8192;

struct ChunkOut {
    text: String,
    truth: String,
    lines: usize,
    dups: usize,
    malformed: usize,
    orphans: usize,
    kinds: [usize; 7],
}

fn review_chunk(ci: usize, n: usize, malformed_at: &[usize], p: &SampleParams, biz: &[Business], orphan_ids: &[String]) -> ChunkOut {
    let mut r = Rng::new(p.seed.wrapping_mul(0x100_0000_01B3) ^ (ci as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    let mut out = ChunkOut { text: String::with_capacity(n * 320), truth: String::new(), lines: 0, dups: 0, malformed: 0, orphans: 0, kinds: [0; 7] };
    let mut recent: Vec<String> = Vec::new();
    for i in 0..n {
        let global = ci * CHUNK + i;
        if malformed_at.binary_search(&global).is_ok() {
            // A truncated line, as found in the real data.
            out.text.push_str("{\"user_id\": \"10000000000000000000\", \"name\": \"Cut Off\", \"time\": 16\n");
            out.malformed += 1;
            out.lines += 1;
            continue;
        }
        if !recent.is_empty() && r.chance(0.01) {
            let dup = recent[r.below(recent.len())].clone();
            out.text.push_str(&dup);
            out.text.push('\n');
            out.dups += 1;
            out.lines += 1;
            continue;
        }
        let kind = pick_kind(&mut r);
        let orphan = r.chance(0.005);
        let b = &biz[r.below(biz.len())];
        let gmap_id = if orphan { r.pick(orphan_ids).clone() } else { b.gmap_id.clone() };
        let (text, rating) = review_text(kind, b, &mut r);
        let truth_text = if p.truth { text.clone() } else { None };
        let time = 1_330_000_000_000i64 + (r.unit() * 300_000_000_000.0) as i64;
        let pics = if r.chance(0.08) {
            json!((0..1 + r.below(3)).map(|_| json!({"url": [format!("https://lh5.googleusercontent.com/p/AF1Qip{}=w150-h150-k-no-p", hex16(&mut r))]})).collect::<Vec<_>>())
        } else {
            json!(null)
        };
        let resp = if r.chance(0.08) {
            json!({"time": time + 86_400_000 * (1 + r.below(30)) as i64, "text": r.pick(RESPONSES)})
        } else {
            json!(null)
        };
        let line = json!({
            "user_id": format!("1{:020}", r.next()),
            "name": format!("{} {}", r.pick(FIRST), r.pick(LAST)),
            "time": time,
            "rating": rating,
            "text": text,
            "pics": pics,
            "resp": resp,
            "gmap_id": gmap_id,
        })
        .to_string();
        out.text.push_str(&line);
        out.text.push('\n');
        if recent.len() < 64 {
            recent.push(line);
        } else {
            let k = r.below(64);
            recent[k] = line;
        }
        if let Some(t) = &truth_text {
            truth_row(&mut out.truth, t, kind);
        }
        out.lines += 1;
        out.orphans += orphan as usize;
        out.kinds[kind as usize] += 1;
    }
    out
}

/// Writes `review-<state>.json` and `meta-<state>.json` into `dir` (created if needed).
///
/// Fast enough for benchmarks (1M reviews in seconds, generated in parallel chunks); the output is the
/// same for the same parameters whatever the number of threads.
pub fn write_sample(dir: impl AsRef<Path>, p: &SampleParams) -> Result<SampleSummary> {
    p.check()?;
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let n_biz = p.businesses.unwrap_or((p.reviews / 40).max(30));
    let biz = businesses(n_biz, p.seed);
    let mut r = Rng::new(p.seed ^ 0x3E7A);
    let orphan_ids: Vec<String> = (0..8).map(|_| format!("0x{}:0x{}", hex16(&mut r), hex16(&mut r))).collect();

    let meta_path = dir.join(format!("meta-{}.json", p.state));
    // Every file is written atomically (crate::output::AtomicFile): a crash leaves the old file or none.
    let mut meta_file = AtomicFile::create(&meta_path)?;
    let mut meta = BufWriter::new(meta_file.file());
    let mut summary = SampleSummary { meta_path: meta_path.clone(), ..Default::default() };
    let mut written_meta: Vec<String> = Vec::new();
    for b in &biz {
        let line = meta_line(b, &biz, &mut r);
        writeln!(meta, "{line}")?;
        summary.meta_lines += 1;
        // Real meta files repeat some businesses verbatim.
        if r.chance(0.02) {
            writeln!(meta, "{line}")?;
            summary.meta_lines += 1;
            summary.duplicate_meta += 1;
        }
        if written_meta.len() < 4 {
            written_meta.push(line);
        }
    }
    meta.flush().with_context(|| format!("cannot write {}", meta_path.display()))?;
    drop(meta);
    meta_file.commit()?;

    let mut malformed_at: Vec<usize> = (0..p.malformed.min(p.reviews)).map(|_| r.below(p.reviews.max(1))).collect();
    malformed_at.sort_unstable();
    malformed_at.dedup();
    let review_path = dir.join(format!("review-{}.json", p.state));
    let mut rev_file = AtomicFile::create(&review_path)?;
    let mut rev = BufWriter::with_capacity(1 << 22, rev_file.file());
    let chunks = p.reviews.div_ceil(CHUNK);
    let mut kinds = [0usize; 7];
    let truth_path = dir.join(format!("truth-{}.csv", p.state));
    let mut truth_file = if p.truth { Some(AtomicFile::create(&truth_path)?) } else { None };
    let mut truth = match truth_file.as_mut() {
        Some(f) => {
            let mut w = BufWriter::new(f.file());
            writeln!(w, "text,relevant,ads,irrelevant,non_visit,spam")?;
            Some(w)
        }
        None => None,
    };
    // Generate a window of chunks in parallel, write them in order.
    for window in (0..chunks).collect::<Vec<_>>().chunks(rayon::current_num_threads().max(1) * 4) {
        let outs: Vec<ChunkOut> = window
            .par_iter()
            .map(|&ci| {
                let n = CHUNK.min(p.reviews - ci * CHUNK);
                review_chunk(ci, n, &malformed_at, p, &biz, &orphan_ids)
            })
            .collect();
        for o in outs {
            rev.write_all(o.text.as_bytes()).with_context(|| format!("cannot write {}", review_path.display()))?;
            if let Some(w) = truth.as_mut() {
                w.write_all(o.truth.as_bytes()).with_context(|| format!("cannot write {}", truth_path.display()))?;
            }
            summary.review_lines += o.lines;
            summary.duplicate_reviews += o.dups;
            summary.malformed += o.malformed;
            summary.orphan_reviews += o.orphans;
            for (k, v) in o.kinds.iter().enumerate() {
                kinds[k] += v;
            }
        }
    }
    rev.flush().with_context(|| format!("cannot write {}", review_path.display()))?;
    drop(rev);
    rev_file.commit()?;
    if let Some(w) = truth.as_mut() {
        w.flush().with_context(|| format!("cannot write {}", truth_path.display()))?;
    }
    drop(truth);
    if let Some(f) = truth_file {
        f.commit()?;
        summary.truth_path = Some(truth_path);
    }
    let all = [Kind::Relevant, Kind::Ad, Kind::Irrelevant, Kind::NonVisitRant, Kind::Spam, Kind::Translated, Kind::NullText];
    summary.kinds = all.iter().map(|k| (*k, kinds[*k as usize])).collect();
    summary.review_path = review_path;
    Ok(summary)
}

impl std::fmt::Display for SampleSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "wrote {} ({} lines: {} duplicates, {} malformed, {} of unknown businesses)", self.review_path.display(), self.review_lines, self.duplicate_reviews, self.malformed, self.orphan_reviews)?;
        writeln!(f, "wrote {} ({} lines: {} duplicates)", self.meta_path.display(), self.meta_lines, self.duplicate_meta)?;
        if let Some(t) = &self.truth_path {
            writeln!(f, "wrote {} (each text with the labels its kind implies: a gold file for label-eval)", t.display())?;
        }
        for (k, v) in &self.kinds {
            writeln!(f, "  {k:?}: {v}")?;
        }
        Ok(())
    }
}
