#!/usr/bin/env python3
"""Writes notebooks/review_moderation.ipynb, the walkthrough, from the cells below.

The notebook is generated so that its text lives in one reviewable place and its bytes are
deterministic (fixed cell ids, sorted keys, nbformat's own layout): running this script twice gives
the same file, and the committed .ipynb must equal what the script writes.

    python3 notebooks/build_notebook.py            # (re)write notebooks/review_moderation.ipynb
    python3 notebooks/build_notebook.py OUT.ipynb  # write elsewhere
    python3 notebooks/build_notebook.py --check    # exit 1 if the committed notebook is stale

Standard library only. Layout of the notebook: a title cell, then the seed notebook's 19 steps, each a
markdown cell headed `## Step N: <title>` (what the step does, why, what to look at, what the seed got)
followed by one short code cell calling the support crate `revmod`. Step 2 has two code cells: the
`parameters` cell (`revmod run -p NAME=VALUE` overrides it, papermill style) and the cell using them.
"""
import json
import os
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "review_moderation.ipynb")

cells = []


def _lines(text):
    """Source as nbformat stores it: a list of lines, each but the last ending in a newline."""
    text = textwrap.dedent(text).strip("\n")
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def md(cell_id, text):
    cells.append({"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": _lines(text)})


def code(cell_id, text, tags=None):
    cells.append({
        "cell_type": "code",
        "execution_count": None,
        "id": cell_id,
        "metadata": {"tags": tags} if tags else {},
        "outputs": [],
        "source": _lines(text),
    })


# ---------------------------------------------------------------------------------------------------
md("title", r"""
# Moderating Google Maps reviews, step by step

This notebook replays the TikTok TechJam 2025 review-moderation walkthrough (the *seed*: a Python
notebook of 19 cells) in Rust. Each step below is a markdown cell (what the step does, why, what to look
at in its output, what the seed got there) and one short code cell that calls the support crate
`revmod`. The function a cell calls has the step's name and lives in the module named after the step, and
the markdown names both (for example `revmod::eval::calibrate`, `src/eval/calibrate.rs`), so any cell is
one hop from its code. The crate documentation (`cargo doc -p revmod --open`) has the same table.

The pipeline: load the Google Local reviews and their businesses (step 3), let a language model label a
sample of them under a strict moderator prompt (steps 4-8), split the labels 70/15/15 (9), train a fast
TF-IDF + logistic regression model per label (10), look at its mistakes (11), calibrate its thresholds,
carefully (12), score every review (13-14) and look at what got flagged (15-19).

**Defaults** run end to end on a laptop CPU with nothing but the project's set-up (`scripts/setup`):
3,000 generated Vermont-like reviews and the embedded Gemma-3 270M, which labels 60 of them. A 270M model
labels noisily and 60 labels are very few: the defaults teach the workflow, not the numbers. The seed ran
Gemma-3-12B-it on 1,000 real Vermont reviews and scored all 842,851 of them; point the parameters (step 2)
at the real `review-Vermont.json` / `meta-Vermont.json`, a bigger model or an OpenAI-compatible server to
do the same (`notebooks/README.md` has the commands).

Everything the run writes goes under `OUT_DIR`: `data/` (the generated sample, when no data is given),
`labels_ckpt_1k/` (labeling checkpoints), `labeled_preview_<n>.parquet` / `.csv` (labels),
`labeled_reviews_ml_ready.parquet` (the split), `models/baseline_tfidf_lr/` (model, `thresholds.json`,
`metrics.csv`, `pr_curves/*.svg`), `error_metrics.csv` and `misclf_<label>_<split>_<FP|FN>.csv` (errors),
`scored_reviews.parquet` and `label_distribution.svg` (scores).
""")

# ---------------------------------------------------------------------------------------------------
md("step-01", r"""
## Step 1: imports

**What.** `:dep` compiles the support crate from the repository root (`..`: cells run with the notebook's
folder as the working directory, in JupyterLab and under `revmod run`), and `use revmod::prelude::*`
brings every step function, the value types and the display traits into scope (`revmod::prelude`,
`src/lib.rs`). `revmod::progress::draw_on_stderr()` asks for the progress lines of labeling, scoring and
model downloads on stderr: the crate itself never prints (`src/progress.rs`).

**Why.** The logic lives in the crate, where it is tested and documented; a cell is the call plus its
display. For polars, use `revmod::polars` (the very build the crate uses) rather than a second `:dep`.

**Look at.** Nothing is printed. The first run compiles the crate and its dependencies (polars, candle)
inside evcxr, which takes minutes; evcxr caches them, so later runs compile only the cells. In the
`revmod` JupyterLab kernel (`revmod kernel install`) the crate is already loaded when the kernel starts,
and running this cell again is harmless.

**The seed** imported its Python stack here: pandas, transformers, scikit-learn and iterstrat.
""")
code("step-01-code", r"""
:dep revmod = { path = ".." }
use revmod::prelude::*;
revmod::progress::draw_on_stderr(); // progress lines of the long steps (the crate never prints by itself)
""")

# ---------------------------------------------------------------------------------------------------
md("step-02", r"""
## Step 2: configuration, output folder and seeds

**What.** The first cell holds the run's parameters. It is tagged `parameters`, so
`revmod run -p NAME=VALUE` adds a cell right after it that re-binds `NAME`, typed like the binding it
overrides (papermill's convention). The second cell turns them into a `Config` with `mount`
(`revmod::config::mount`, `src/config.rs`): it creates `OUT_DIR` and its cache and checkpoint folders,
applies `REVMOD_*` environment overrides, then the sizes and the seed given here. With `REVIEWS` empty it
writes the embedded sample data into `OUT_DIR/data` (`revmod::data::write_sample`,
`src/data/sample.rs`): 3,000 review lines, deterministic, with what the pipeline must find: ads (URLs,
phone numbers, coupon codes), off-topic text, rants without a visit, junk, Google translation wrappers,
null texts, duplicates, reviews of unknown businesses and 2 malformed lines.

| parameter | default | meaning |
|---|---|---|
| `OUT_DIR` | `../out` | everything the run writes |
| `REVIEWS`, `META` | `""` | review and meta JSON-lines files (plain or `.gz`); empty: generate the sample |
| `N_PREVIEW` | 5 | reviews labeled in step 7 |
| `N_LABEL` | 60 | reviews labeled in step 8: the training sample |
| `PART_SIZE` | 20 | reviews per checkpoint part in step 8 |
| `SEED` | 42 | seed of the labeling sample (the seed's `random_state`) |
| `BACKEND` | `local` | `local` (Gemma on this machine), `openai` (a server at `URL`) or `rules` (no model) |
| `MODEL` | `default` | local: `default` (embedded Gemma-3 270M), a `.gguf` file, a checkpoint folder or a Hugging Face repo id in the local cache; openai: the served model's name |
| `URL` | `http://127.0.0.1:8080/v1` | openai: the server's base URL, up to `/v1` |
| `GOLD` | `""` | a CSV of human-labeled reviews (`text` + 0/1 columns `ads`, `irrelevant`, `non_visit`, `spam`, `relevant`): step 8b measures the labeler on it |

**Why.** A run is one value passed from cell to cell, not module globals, and every output has a known
place, so a run can resume from any step.

**Look at.** The configuration table: every folder and file the run will use.

**The seed** mounted Google Drive and set `OUT_DIR`, `CACHE_DIR`, `CKPT_DIR`, `N_PREVIEW`, `N_LABEL`
(1,000), `PART_SIZE` and its random seeds (42). `Config::new` keeps the seed's sizes (20 / 1,000 / 100);
the defaults here are smaller so that the whole walkthrough runs in minutes.
""")
code("step-02-parameters", r"""
// Parameters: `revmod run notebooks/review_moderation.ipynb -p NAME=VALUE` overrides any of these.
let OUT_DIR: &str = "../out";               // everything the run writes goes here
let REVIEWS: &str = "";                     // review-*.json(.gz), "" = generate the sample into OUT_DIR/data
let META: &str = "";                        // meta-*.json(.gz) of the same state, given with REVIEWS
let N_PREVIEW: usize = 5;                   // reviews labeled in step 7 (the seed: 20)
let N_LABEL: usize = 60;                    // reviews labeled in step 8, the training sample (the seed: 1000)
let PART_SIZE: usize = 20;                  // reviews per checkpoint part in step 8
let SEED: u64 = 42;                         // seed of the labeling sample (the seed's random_state)
let BACKEND: &str = "local";                // "local", "openai" or "rules"
let MODEL: &str = "default";                // local: "default", a .gguf, a folder or an HF repo id; openai: model name
let URL: &str = "http://127.0.0.1:8080/v1"; // openai: base URL up to /v1
let GOLD: &str = "";                        // human-labeled CSV for step 8b ("" = only the generator's truth)
""", tags=["parameters"])
code("step-02-code", r"""
let mut cfg: Config = mount(OUT_DIR)?.with_sizes(N_PREVIEW, N_LABEL, PART_SIZE).with_seed(SEED);
if REVIEWS.is_empty() {
    println!("{}", write_sample(cfg.out("data"), &SampleParams::default())?);
} else {
    cfg = cfg.with_data(REVIEWS, META);
}
cfg
""")

# ---------------------------------------------------------------------------------------------------
md("step-03", r"""
## Step 3: load reviews and businesses

**What.** `load_df(reviews, meta)` (`revmod::data::load_df`, `src/data/load.rs`) reads both JSON-lines
files, drops repeated businesses (same `gmap_id`, first kept), joins each review to its business in
review order, drops repeated reviews (same user, business, text, time and rating) and renames `name` to
`reviewer_name` / `business_name`. Nested fields stay typed (`resp`, `pics`, `category`, `hours`, `MISC`).

**Why.** Everything downstream needs the review text next to the place's name and category: the
moderator prompt shows all three.

**Look at.** The load report first: lines read, malformed lines skipped (each named by file and line),
fields of the wrong type, repeated businesses and reviews dropped, reviews whose business is unknown.
On the sample data, 2 malformed lines are skipped and reported. Then the first rows of the table.

**The seed** read the files with pandas, whose JSON-lines reader stops at the first malformed line
instead of skipping it; on the real Vermont files its join gave the 842,851 reviews it scored in
step 14.
""")
code("step-03-code", r"""
let loaded: Loaded = load_df(&cfg.review_path, &cfg.meta_path)?;
let df: DataFrame = loaded.df.clone(); // the seed's `df`: reviews joined to their businesses
loaded.display()
""")

# ---------------------------------------------------------------------------------------------------
md("step-04", r"""
## Step 4: Hugging Face token

**What.** Looks for a Hugging Face token the way `huggingface_hub` does (`HF_TOKEN` or
`HUGGING_FACE_HUB_TOKEN`, else the file `HF_TOKEN_PATH`, else `HF_HOME/token`) with
`revmod::llm::hub::hf_token` (`src/llm/hub.rs`) and prints only whether there is one, never the token.

**Why.** Gemma's weights on the hub are gated. When `MODEL` is a repo id such as `google/gemma-3-12b-it`
that is not yet in the local Hugging Face cache (`HF_HUB_CACHE` / `HF_HOME`, printed below), step 5
downloads it there with hf-hub (`revmod::llm::fetch`, `src/llm/fetch.rs`) and sends this token; without
access it stops with an error naming the model page where the licence is accepted. A model already in
the cache is used without the network (`HF_HUB_OFFLINE=1` or `revmod run --offline`: never ask).

**Look at.** "found" or "none". The defaults (the embedded model, a GGUF file) need no token.

**The seed** logged in to the hub with a token so that transformers could download the gated
Gemma-3-12B-it.
""")
code("step-04-code", r"""
let hf_token_found: bool = revmod::llm::hub::hf_token().is_some(); // the token itself is never shown
println!("Hugging Face token: {}", if hf_token_found { "found (not shown)" } else { "none (the defaults need none)" });
println!("Hugging Face cache: {}", revmod::llm::hub::hub_cache_dir().display());
""")

# ---------------------------------------------------------------------------------------------------
md("step-05", r"""
## Step 5: load the model

**What.** Builds the labeler for `BACKEND` (`revmod::label::Labeler`, `src/label/mod.rs`):
- `local`: `Labeler::local` calls `load_gemma(MODEL)` (`revmod::llm::load_gemma`, `src/llm/mod.rs`):
  Gemma-3 written for this project on candle (`src/llm/gemma3.rs`), weights from a GGUF file or a
  Hugging Face checkpoint, its tokenizer and chat template. `default` is the embedded Gemma-3 270M
  (Q4_K_M, sha256-checked, put in place by `scripts/setup-model`): the small pretrained *base* model, not
  an instruction-tuned one (its GGUF has no chat template). The backend picks its mode from the model and
  says it in the labeler id: `mode=fewshot-loglik` for a base model, which continues a page of example
  reviews written by this project and is read through the log-likelihood of `yes`/`no` after each
  question, calibrated and combined with the keyword rules (`src/label/fewshot.rs`; the page's KV cache
  is computed once); `mode=instruct-json` for an instruction-tuned model (Gemma-3-*-it), which gets the
  seed's zero-shot JSON prompt, decoded constrained to the answer's JSON shape with the system prompt's KV
  cache computed once (`src/label/local.rs`, `src/label/constrained.rs`).
- `local` with a repo id: downloaded first when not in the cache (progress line; resumes an interrupted
  download; sha256-checked), see step 4. A safetensors checkpoint such as `google/gemma-3-12b-it` is
  quantized to Q8_0 while it is read on CPU (about 12.8 GB of weights for the 12B instead of 48 GB in f32;
  `REVMOD_SAFETENSORS_WEIGHTS=f32` keeps f32); the multimodal `-it` checkpoints (4B/12B/27B) load their text
  model and skip the vision tower, which the model's weight description says.
- `openai`: any OpenAI-compatible chat server at `URL` serving `MODEL` (vLLM, llama-server, Ollama, or
  over `https://` a hosted API such as Google's Gemini API), `src/label/openai.rs`; the key comes from
  `OPENAI_API_KEY` and is never shown.
- `rules`: keyword rules and no language model, for teaching and smoke runs (`src/label/rules.rs`).

**Why.** Steps 6-8 need something that answers. The three backends fill the same columns, so nothing
after step 8 depends on which one you chose.

**Look at.** The labeler's identity: backend, model and settings. It is part of the checkpoint
fingerprint of step 8, so changing the model never mixes old and new labels.

**The seed** loaded Gemma-3-12B-it and its tokenizer with transformers.
""")
code("step-05-code", r"""
let mut labeler: Labeler = match BACKEND {
    "local" => Labeler::local(Some(MODEL))?,  // load_gemma(MODEL); few-shot scoring or the JSON prompt
    "openai" => Labeler::openai(URL, MODEL)?, // any OpenAI-compatible server
    "rules" => Labeler::rules(),              // keyword rules, no language model
    other => Err(format!("BACKEND must be \"local\", \"openai\" or \"rules\", not {other:?}"))?,
};
println!("labeler: {}", labeler.labeler_id());
""")

# ---------------------------------------------------------------------------------------------------
md("step-06", r"""
## Step 6: the prompt, the guard and the parser

**What.** The three pieces around the model, on inputs you can check by eye:
- the moderator prompt is a value (`ModeratorPrompt`, `src/label/prompt.rs`): print it, edit
  `labeler.prompt.system` in a cell, and the next labeling uses the edited rules (an instruction-tuned
  model reads it; a base model in few-shot mode reads the project's example page instead,
  `revmod::label::fewshot::EXAMPLES`, and only the prompt's text cut applies);
- the guard (`src/label/guard.rs`, the seed's `clean_review` and `cheap_low_quality`) removes Google's
  translation markers and stops empty, two-word, shorter-than-12-character, letterless or repeated-character
  texts: they are labeled SPAM without a model call;
- the parser (`revmod::label::parse_output`, `src/label/parser.rs`) reads the answer: the fenced
  ```` ```json ```` block or the outermost braces, violation names upper-cased, a string accepted for a
  list; `parse_success` only when all three keys are there.

**Why.** The labels are only as good as these three pieces; seeing them on known inputs first makes the
next tables readable.

**Look at.** The parser's result on a chatty answer (text before the block, `"yes"` for true, the
violations as one string). In the table: the junk review is `guarded` (no model output in `gemma_raw`);
then the label columns `is_*` (0/1), the `rationale`, `parse_success`, and `llm_p_*`, the local backend's
probability of each label (empty for the other backends).

**The seed** used the same prompt, guard and parser (revmod's prompt says the rules in its own words),
with free greedy generation of up to 96 tokens. revmod's local backend constrains decoding so that every
answer parses; the parser still reads it, as it reads every backend's answer.
""")
code("step-06-code", r"""
println!("{}\n", labeler.prompt.system); // the moderator rules: a value you can edit
let messy: &str = "Sure! ```json\n{\"is_relevant\": \"yes\", \"violations\": \"ads, spam\", \"rationale\": \"Gives a promo code.\"}\n```";
println!("parse_output on a chatty answer: {:?}\n", revmod::label::parse_output(messy));
let demo_reviews: DataFrame = revmod::polars::df!(
    "text" => ["Great maple creemees and friendly staff, we only waited ten minutes.", "Best deals in town!! Call 802-555-0142 now and use code SAVE20 for 20% off", "Never been inside but I heard the owner is rude to everyone.", "!!!!!!!!"],
    "business_name" => ["Sugarhouse Creemees", "Sugarhouse Creemees", "Sugarhouse Creemees", "Sugarhouse Creemees"],
    "category" => ["Ice cream shop", "Ice cream shop", "Ice cream shop", "Ice cream shop"],
)?;
label_preview(&demo_reviews, 4, &mut labeler)?
""")

# ---------------------------------------------------------------------------------------------------
md("step-07", r"""
## Step 7: label a preview

**What.** `label_preview(&df, N_PREVIEW, &mut labeler)` (`revmod::label::label_preview`,
`src/label/mod.rs`) labels a seeded sample of the loaded reviews (random seed 42, as the seed) through
guard, backend and parser, and returns the labeled rows as a table.

**Why.** A cheap look before the long run: are the answers sensible, do they parse, is the speed
acceptable?

**Look at.** `parse_success` (1 everywhere with the local backend), each `rationale` against its
`text`, and the progress line on stderr: its reviews per second times `N_LABEL` is how long step 8 will
take.

**The seed** labeled `N_PREVIEW` reviews with Gemma-3-12B-it and printed them.
""")
code("step-07-code", r"""
let preview: Preview = label_preview(&df, cfg.n_preview, &mut labeler)?; // the table and any warnings
preview
""")

# ---------------------------------------------------------------------------------------------------
md("step-08", r"""
## Step 8: label the training sample, with checkpoints

**What.** `label_with_ckpt` (`revmod::label::label_with_ckpt`, `src/label/ckpt.rs`) labels `N_LABEL`
sampled reviews (seed `SEED`) in parts of `PART_SIZE`. Each part is written atomically to `CKPT_DIR`
(`part_0000.parquet`, ...) beside a manifest of the sample; the labels end up in
`OUT_DIR/labeled_preview_<n>.parquet` and `.csv`. Re-running resumes from the complete parts. A run with
another sample, prompt, labeler or part size stops with an error that says what changed rather than mix
labels: use another `OUT_DIR`, or delete `CKPT_DIR` to start over.

**Why.** Labeling is the slow step (the seed: 1,000 reviews through a 12B model); a crash or a closed
laptop must not lose the parts already done.

**Look at.** The summary: positives per label, parse rate, reviews stopped by the guard, backend errors.
Step 10 learns a label only from its positives. The default labeler (the 270M in few-shot mode, with the
keyword rules as a second detector) flags the generator's ads, rants, junk and most of its off-topic
texts, so every label gets positives; with very few positives step 10 fits a constant model and says so,
and step 12's guard refuses to calibrate on them. Step 8b measures how good these labels are.

**The seed** labeled 1,000 Vermont reviews with Gemma-3-12B-it, in parts on Google Drive, and saved
them as `labeled_preview_1000.parquet` / `.csv`.
""")
code("step-08-code", r"""
let opts: CkptOptions = CkptOptions { seed: cfg.seed, ..CkptOptions::default() };
let ckpt: CkptRun = label_with_ckpt(&df, cfg.n_label, cfg.part_size, &cfg.ckpt_dir, &mut labeler, &opts)?;
println!("{ckpt}");
ckpt.labeled.table(5)
""")

# ---------------------------------------------------------------------------------------------------
md("step-08b", r"""
## How good are these labels? (step 8b)

**What.** Every later step learns from step 8's labels, so this step measures them. Two comparisons,
both as per-label support, precision, recall, F1 and flag rate (`revmod::label::eval`,
`src/label/eval.rs`):
- with the generated sample's own truth: `write_sample` (step 2) also wrote `data/truth-Vermont.csv`,
  every generated text with the labels its kind implies (an ad, an off-topic text, a rant without a
  visit, junk, a genuine review). `compare_labeled` matches step 8's rows to it by text;
- with `-p GOLD=path`, a CSV of reviews labeled by people (`text`, optional `business_name` and
  `category`, 0/1 columns for any of `relevant`, `ads`, `irrelevant`, `non_visit`, `spam`; empty cells are
  unknown): `label_eval_file` labels its texts with the same labeler and compares. The same from the
  command line: `revmod label-eval --gold GOLD.csv [--backend ... --model ...]`.

The local labeler says which mode it runs in (`mode=` in its id, step 5): `fewshot-loglik` for a base
model such as the embedded Gemma-3 270M, which continues a page of example reviews and is read through the
log-likelihood of `yes`/`no` after each question (`src/label/fewshot.rs`), plus a hidden-state probe for
off-topic and non-visit text (`src/label/probe.rs`: logistic heads on the mean of layer 11's hidden states
over the review, captured in the same forward, fitted on 269 reviews the project wrote,
`data/probe-train.csv`), calibrated and combined with the keyword rules; an ad the rules find is never
relevant, and the model's own ads or never-visited answer takes relevance away only when it is at least as
probable as its relevance answer.
`instruct-json` for instruction-tuned models (Gemma-3-*-it, a server), which get the seed's zero-shot JSON
prompt.

How good the default is on human labels (README, "How good are the labels", with the commands): on the
held-out part of a 536-review human-labeled development set (159 rows, ads and off-topic over-represented)
F1 1.00 for ads, 0.55 for off-topic (0.00 before the probe) and 0.93 for relevant (0.77 before); on 162
hand-labeled Utah reviews F1 0.95 for relevant (short praise is sometimes read as off-topic; the seed's
guard, which stopped detailed reviews with a "!!!!" or "...." in them as junk, stops only degenerate text now). Rants without a visit have no human gold there; the generator's truth below measures them. A
bigger instruction-tuned model (`-p MODEL=...` a Gemma-3-*-it, or `BACKEND=openai`) reads the definitions
instead of examples and needs no probe; measure it here with `-p GOLD=path` before trusting it.

**Why.** The seed never measured its labels. A labeler that flags nothing, or everything, would still
fill the columns and let steps 9-19 run; only a comparison with known answers tells.

**Look at.** F1 per label, and the flag rate beside the true rate: a label flagged far more often than it
occurs drowns the classifier in false positives; one never flagged leaves step 10 nothing to learn. The
generator's truth is easy (templated texts); human labels on real reviews are the real test: the README's
section "How good are the labels" lists what the default gets on real review sets and what a bigger
model changes.

**The seed** had no such step.
""")
code("step-08b-code", r"""
let truth_file: std::path::PathBuf = cfg.out("data").join("truth-Vermont.csv");
let mut agreement: Vec<LabelEval> = Vec::new();
if REVIEWS.is_empty() && truth_file.exists() {
    agreement.push(compare_labeled(&ckpt.labeled, &read_gold(&truth_file)?, &labeler.labeler_id())?);
} else {
    println!("no generator truth for your own REVIEWS: pass -p GOLD=path to measure the labels");
}
if !GOLD.is_empty() {
    agreement.push(label_eval_file(GOLD, &mut labeler)?);
}
for a in &agreement {
    println!("{a}");
}
""")

# ---------------------------------------------------------------------------------------------------
md("step-09", r"""
## Step 9: split 70/15/15

**What.** `split(&labeled, &SplitParams::default())` (`revmod::split::split`, `src/split/mod.rs`) skips rows
without text and repeated texts (counted in its report, never dropped silently), makes the `y_*` targets
from the labeler's `is_*` columns and splits the rows 70/15/15 into train, val and test by iterative
multilabel stratification. iterstrat's algorithm and numpy's random generator are reproduced draw for draw
(`src/split/`), so the same rows land in each part as with the seed's `MultilabelStratifiedShuffleSplit`
(seeds 42, then 43). `save` writes `OUT_DIR/labeled_reviews_ml_ready.parquet`.

**Why.** Stratifying on all labels at once keeps some positives of every rare label in each part, so
that validation has something to choose thresholds on and test something to measure.

**Look at.** The report (rows skipped and why, labels without any positive) and the supports table:
positives per label in train, val and test. A label with fewer than 5 validation positives cannot be
calibrated reliably (step 12).

**The seed** split its 1,000 labels the same way; its validation part held only 1 to 5 positives of
the rare labels.
""")
code("step-09-code", r"""
let ml: MlReady = split(&ckpt.labeled, &SplitParams::default())?;
println!("{}", ml.report);
println!("wrote {}", ml.save(&cfg.out_dir)?.display());
ml.supports()?
""")

# ---------------------------------------------------------------------------------------------------
md("step-10", r"""
## Step 10: train the baseline

**What.** `train_baseline(&ml, &BaselineParams::default())` (`revmod::train::train_baseline`,
`src/train/mod.rs`; TF-IDF in `src/text/`, logistic regression in `src/linear/`) fits word (1,2)-gram TF-IDF
(min_df 2, max_df 0.9, at most 200k features) and char (3,5)-gram TF-IDF (min_df 2, 300k) on the train
texts, stacks them, fits one logistic regression per label with liblinear's objective (C 1, balanced class
weights), and sets each label's threshold to the first best validation F1 on 0.10, 0.15, ..., 0.90.
The model, its thresholds and `metrics.csv` go to `OUT_DIR/models/baseline_tfidf_lr/` (JSON +
safetensors, `docs/model-format.md`).

**Why.** The language model labels a sample; a linear model learns from it and then scores every review
in seconds, where running the language model over all of them would be far too slow.

**Look at.** Precision, recall and F1 per label and split at the chosen thresholds, next to `support`
(the positives behind each number: an F1 on two positives swings from 0 to 1), and the notes: a label
whose train part has a single class gets a constant model and a note instead of a crash.

**The seed** trained the same features and models with scikit-learn; revmod's vectorizers and solver
are checked against scikit-learn's in its tests.
""")
code("step-10-code", r"""
let Trained { model: mut baseline, metrics } = train_baseline(&ml, &BaselineParams::default())?;
let model_dir: std::path::PathBuf = cfg.out("models/baseline_tfidf_lr");
revmod::train::artifacts::save_with_metrics(&baseline, &metrics, &model_dir)?;
for note in &metrics.notes { println!("note: {note}"); }
metrics.table()?.table(15)
""")

# ---------------------------------------------------------------------------------------------------
md("step-11", r"""
## Step 11: error analysis

**What.** `error_analysis(&baseline, &ml.df, &ErrorAnalysisParams::default())`
(`revmod::eval::error_analysis`, `src/eval/errors.rs`) measures each label on val and test at the model's
thresholds and keeps, per label and split, the 200 worst false positives (highest probability first) and
false negatives (lowest first). `save` writes `error_metrics.csv` and
`misclf_<label>_<split>_<FP|FN>.csv` to `OUT_DIR`.

**Why.** Metrics say how often the model is wrong, examples say why; a "false positive" is sometimes the
language model's labeling mistake rather than the linear model's.

**Look at.** The metrics table (rows, positives, rows flagged, precision, recall, F1), then the example
tables: read the texts.

**The seed** wrote the same `misclf_*` files, 200 rows each at most.
""")
code("step-11-code", r"""
let errors: ErrorAnalysis = error_analysis(&baseline, &ml.df, &ErrorAnalysisParams::default())?;
println!("wrote {} files (error_metrics.csv, misclf_*.csv) to {}", errors.save(&cfg.out_dir)?.len(), cfg.out_dir.display());
errors
""")

# ---------------------------------------------------------------------------------------------------
md("step-12", r"""
## Step 12: calibrate the thresholds, with a guard

**What.** `calibrate(&baseline, &ml.df, &CalibrateParams::default())` (`revmod::eval::calibrate`,
`src/eval/calibrate.rs`; the curve is `revmod::eval::pr_curve`, `src/eval/pr.rs`, with scikit-learn's
semantics) draws each label's precision-recall curve on validation and takes the threshold of best F1, as
the seed did, with a guard the seed lacked: a label keeps its previous threshold when it has fewer than 5
validation positives, or when the F1-optimal threshold would flag more than 3 times the labeled base rate.
`persist` applies the thresholds to the model, updates `thresholds.json` (every decision and why) and
writes the curves to `models/baseline_tfidf_lr/pr_curves/*.svg`.

**Why.** A precision-recall curve through a handful of positives is noise, and its "best" threshold is
often tiny, which flags nearly everything.

**Look at.** The red box (labels the guard kept, and why), the old and new thresholds with the share of
validation rows each flags, and the curves: a dot is the threshold applied, a cross an F1-optimal threshold
the guard rejected. To see what the seed did, calibrate with
`CalibrateParams { guard: false, ..CalibrateParams::default() }`: the table then says
`UPDATED DESPITE GUARD`.

**The seed** calibrated on 1 to 5 validation positives per rare label and got thresholds of 0.025 to
0.058; scored over all 842,851 Vermont reviews (step 14), those flagged 66% of them as ads and 91% as
irrelevant.
""")
code("step-12-code", r"""
let cal: Calibration = calibrate(&baseline, &ml.df, &CalibrateParams::default())?;
for f in cal.persist(&mut baseline, &model_dir)? { println!("wrote {}", f.display()); }
cal
""")

# ---------------------------------------------------------------------------------------------------
md("step-13", r"""
## Step 13: the scoring utility

**What.** `score_all(&model, &frame, &params)` (`revmod::score::score_all`, `src/score/mod.rs`) adds, for
every label, `p_<label>` (probability) and `<label>` (1 when `p` reaches the calibrated threshold) to any
table with a `text` column; here three texts written by hand. The model is used through the `Scorer`
trait (`src/moderation.rs`: probabilities and thresholds), the one interface steps 11-14 need.

**Why.** Try the model on inputs you control before trusting it with all the data.

**Look at.** Does the ad get the highest `p_ads`, the second text the highest `p_non_visit`, the real
review `relevant`? After 60 labels, expect surprises.

**The seed** defined a helper here that vectorized texts and applied each label's model and threshold.
""")
code("step-13-code", r"""
let demo_texts: DataFrame = revmod::polars::df!("text" => [
    "Visit www.vtdeals.example.com or call 802-555-0199 today for 30% off everything!",
    "I never went in, but my friend said the staff there is rude.",
    "The pancakes were fluffy, the maple syrup was real and the staff was friendly.",
])?;
let quiet: ScoreParams = ScoreParams { progress: false, ..ScoreParams::default() };
score_all(&baseline, &demo_texts, &quiet)?.df
""")

# ---------------------------------------------------------------------------------------------------
md("step-14", r"""
## Step 14: score every review

**What.** `score_all(&baseline, &df, &ScoreParams::default())` scores all loaded reviews in batches of
16,384 rows, each batch in parallel chunks on all cores, and the table is written to
`OUT_DIR/scored_reviews.parquet` by its `save` (through `revmod::output::write_parquet`, `src/output.rs`,
the writer of every table the run saves, atomically: pandas, pyarrow, DuckDB and polars open it, nested columns
included; `docs/outputs.md` lists its columns). For files larger than memory, `revmod score` streams the
same scoring from JSON lines to parquet (`src/score/files.rs`).

**Why.** This is the goal: a moderation flag for every review.

**Look at.** The summary: rows scored, rows flagged per label and their share, and the warnings: any
label other than `relevant` that flags more than half of all reviews is called out, because that is what a
bad calibration looks like.

**The seed** scored all 842,851 Vermont reviews; with its calibrated thresholds, 66% came out as ads and
91% as irrelevant.
""")
code("step-14-code", r"""
let scoring: Scored = score_all(&baseline, &df, &ScoreParams::default())?;
scoring.save(cfg.out("scored_reviews.parquet"))?; // pandas.read_parquet opens it
println!("wrote {}", cfg.out("scored_reviews.parquet").display());
scoring.summary
""")

# ---------------------------------------------------------------------------------------------------
md("step-15", r"""
## Step 15: predicted label distribution

**What.** `label_distribution(&scoring.df)` (`revmod::score::label_distribution`, `src/score/summary.rs`)
counts the rows flagged per label and their share, as a table and a bar chart shown together in one
output (`Many`, `src/show/mod.rs`: evcxr keeps only the last output of each kind per cell, so the two are
folded into one HTML output). The chart is also saved as `OUT_DIR/label_distribution.svg`.

**Why.** The sanity check that would have caught the seed's problem: compare these shares with how often
the language model gave each label in step 8.

**Look at.** Any share far above the labeled base rate of its label.

**The seed**'s distribution showed 66% ads and 91% irrelevant: its calibration failure in one picture.
""")
code("step-15-code", r"""
let dist: LabelDistribution = label_distribution(&scoring.df)?;
dist.chart.save(cfg.out("label_distribution.svg"))?;
dist.show()
""")

# ---------------------------------------------------------------------------------------------------
md("step-16", r"""
## Step 16: examples of ads

**What.** `label_examples(&scoring.df, "ads", 5, "text", &["business_name", "rating"])`
(`revmod::score::label_examples`, `src/score/summary.rs`) shows the 5 reviews flagged as ads with the
highest probability, with their business and rating. `examples_per_label` shows steps 16-19 at once.

**Why.** Reading flagged reviews is the quickest check that a flag means what its name says.

**Look at.** URLs, phone numbers, coupon codes, "call now": promotion rather than experience.

**The seed** printed example reviews for ads, irrelevant, non-visit rants and spam in its last four cells.
""")
code("step-16-code", r"""
label_examples(&scoring.df, "ads", 5, "text", &["business_name", "rating"])?
""")

md("step-17", r"""
## Step 17: examples of irrelevant reviews

**What.** The 5 reviews most confidently flagged `irrelevant` (same function, `src/score/summary.rs`).

**Why.** "Irrelevant" is the label the seed's calibration broke worst (91% of all reviews flagged).

**Look at.** Text about something other than the place: other topics, other businesses, greetings.

**The seed** printed irrelevant examples here.
""")
code("step-17-code", r"""
label_examples(&scoring.df, "irrelevant", 5, "text", &["business_name", "rating"])?
""")

md("step-18", r"""
## Step 18: examples of non_visit_rant

**What.** The 5 reviews most confidently flagged as rants without a visit. The model's label is
`non_visit`; the labeler's column is `is_rant_without_visit` and the prompt's violation `NON_VISIT_RANT`
(the names are defined once, in `src/moderation.rs`).

**Why.** This policy needs the most judgment: a complaint is fine when the writer was there.

**Look at.** "never been", "I heard", "didn't go in", complaints about a phone call only.

**The seed** printed non-visit rant examples here.
""")
code("step-18-code", r"""
label_examples(&scoring.df, "non_visit", 5, "text", &["business_name", "rating"])?
""")

md("step-19", r"""
## Step 19: examples of spam

**What.** The 5 reviews most confidently flagged `spam`.

**Why.** Spam is the label the guard (step 6) already gives to junk before any model call, so the
classifier learns it from the guard's labels as well as the model's.

**Look at.** Empty or one-word texts, emoji only, repeated characters, boilerplate.

**The seed** printed spam examples here.

That is the whole walkthrough. Every file it wrote is under `OUT_DIR` (the list is in the first cell);
`revmod run notebooks/review_moderation.ipynb --html report.html` replays it headless and writes a
standalone report, and `notebooks/README.md` shows how to point it at the real data and a bigger model.
""")
code("step-19-code", r"""
label_examples(&scoring.df, "spam", 5, "text", &["business_name", "rating"])?
""")

NOTEBOOK = {
    "cells": cells,
    "metadata": {
        "kernelspec": {"display_name": "Rust (revmod)", "language": "rust", "name": "revmod"},
        "language_info": {
            "codemirror_mode": "rust",
            "file_extension": ".rs",
            "mimetype": "text/rust",
            "name": "Rust",
            "pygment_lexer": "rust",
            "version": "",
        },
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def render():
    """The notebook's bytes, laid out as nbformat writes them (indent 1, sorted keys, UTF-8)."""
    return json.dumps(NOTEBOOK, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv):
    if argv[1:2] == ["--check"]:
        path = argv[2] if len(argv) > 2 else DEFAULT_OUT
        with open(path, encoding="utf-8") as f:
            if f.read() != render():
                print(f"{path} is stale: run python3 {os.path.relpath(__file__)}", file=sys.stderr)
                return 1
        return 0
    path = argv[1] if len(argv) > 1 else DEFAULT_OUT
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(render())
    steps = sum(1 for c in cells if c["cell_type"] == "markdown" and c["source"][0].startswith("## Step "))
    print(f"wrote {path}: {len(cells)} cells, {steps} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
