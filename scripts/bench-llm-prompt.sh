# Sourced by scripts/bench-llm and scripts/bench-llm-native: the benchmark prompt.
# A realistic labeling prompt: a moderator system prompt + a real review, in the Gemma-3-it chat template.
SYSTEM="You are a strict moderator of Google location reviews. Decide only from the review text and the place's name and category; never assume a visit. Violations: ADS (URLs, phone numbers, coupon codes, discounts, any promotion), IRRELEVANT (mostly about other topics or another place), NON_VISIT_RANT (a complaint without a visit signal: never been, I heard, didn't go inside), SPAM (near empty, one word or emoji, gibberish, repetition, boilerplate). Relevant means it describes the place's experience, service, staff, products or setting. When unsure, mark no violation and not relevant. Answer JSON only: {\"is_relevant\": bool, \"violations\": [...], \"rationale\": \"<= 25 words\"}."
USER="Place: Buona Sera (Italian restaurant)
Review: My husband took me here for my birthday!  The best meal we have had here! The food is fresh and delicious!  They have a large selection of wine. It's is a very peaceful,  romantic setting.  I loved it. We will definitely come back!"
PROMPT_FILE="$(mktemp)"
trap 'rm -f "$PROMPT_FILE"' EXIT
# llama.cpp adds <bos> itself: give it the template without the literal one
printf '<start_of_turn>user\n%s\n\n%s<end_of_turn>\n<start_of_turn>model\n' "$SYSTEM" "$USER" > "$PROMPT_FILE"

