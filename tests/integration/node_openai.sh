#!/usr/bin/env bash
# The official `openai` npm client against a real node: a completion (usage counted), a
# streamed chat completion, an array prompt (one choice per prompt) and the model list.
# Installs the client with npm into a temp dir; skips (77) only when npm cannot reach the
# registry.
source "$(dirname "$0")/lib/node.bash"
command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIP: node/npm not installed"; exit 77; }

mkdir -p "$tmp/js"
if ! (cd "$tmp/js" && timeout 60 npm install --silent --no-audit --no-fund openai@4 >"$tmp/npm.log" 2>&1); then
	if grep -Eqi 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|network' "$tmp/npm.log"; then
		echo "SKIP: npm cannot reach the registry: $(tail -2 "$tmp/npm.log")"
		exit 77
	fi
	echo "FAIL: npm install openai: $(tail -5 "$tmp/npm.log")"
	exit 1
fi

start_node B -m "$MODEL" --threads 1
start_node A -m "$MODEL" --threads 1 --peer "${node_url[B]}"

cat >"$tmp/js/t.mjs" <<'EOF'
import OpenAI from "openai";
const client = new OpenAI({ baseURL: process.env.BASE + "/v1", apiKey: "none" });
const out = {};
const models = await client.models.list();
out.models = models.data.map((m) => m.id);
const c = await client.completions.create({ model: "stories260K", prompt: "Once upon a time",
	max_tokens: 12, temperature: 0 });
out.completion = { text: c.choices[0].text, usage: c.usage, object: c.object,
	finish_reason: c.choices[0].finish_reason };
const arr = await client.completions.create({ model: "stories260K",
	prompt: ["Once upon a time", "The cat", "One day"], max_tokens: 6, temperature: 0 });
out.array = arr.choices.map((ch) => ({ index: ch.index, text: ch.text }));
const stream = await client.chat.completions.create({ model: "stories260K", stream: true,
	max_tokens: 12, temperature: 0,
	messages: [{ role: "system", content: "You tell stories." }, { role: "user", content: "Tell me about a dog." }] });
let text = "", chunks = 0, finish = null;
for await (const chunk of stream) {
	chunks++;
	text += chunk.choices[0]?.delta?.content ?? "";
	if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
}
out.chat_stream = { text, chunks, finish };
const chat = await client.chat.completions.create({ model: "stories260K", max_tokens: 12,
	temperature: 0, messages: [{ role: "system", content: "You tell stories." }, { role: "user", content: "Tell me about a dog." }] });
out.chat = { text: chat.choices[0].message.content, role: chat.choices[0].message.role, usage: chat.usage };
try {
	await client.completions.create({ model: "no-such-model", prompt: "x", max_tokens: 2 });
	out.bad_model = "no error";
} catch (e) {
	out.bad_model = { status: e.status, message: e.message };
}
console.log(JSON.stringify(out));
EOF
BASE=${node_url[A]} timeout 30 node "$tmp/js/t.mjs" >"$tmp/out.json" 2>"$tmp/node.err" ||
	fail "openai client script failed: $(tail -5 "$tmp/node.err")"

jq -e '.models == ["stories260K"]' "$tmp/out.json" >/dev/null || fail "models.list: $(jq -c .models "$tmp/out.json")"
want=$("$HERD" generate -m "$MODEL" -p "Once upon a time" -n 12 --temp 0 -t 1 --json 2>/dev/null)
[ "$(jq -r .completion.text "$tmp/out.json")" = "$(echo "$want" | jq -r .text)" ] ||
	fail "completion text '$(jq -r .completion.text "$tmp/out.json")' != herd generate '$(echo "$want" | jq -r .text)'"
jq -e --argjson p "$(echo "$want" | jq .prompt_tokens)" --argjson g "$(echo "$want" | jq .generated_tokens)" \
	'.completion.usage.prompt_tokens == $p and .completion.usage.completion_tokens == $g and
	 .completion.usage.total_tokens == $p + $g' "$tmp/out.json" >/dev/null ||
	fail "completion usage $(jq -c .completion.usage "$tmp/out.json"), herd generate: $(echo "$want" | jq -c '[.prompt_tokens, .generated_tokens]')"
jq -e '.array | length == 3 and ([.[].index] == [0,1,2])' "$tmp/out.json" >/dev/null ||
	fail "array prompt: $(jq -c .array "$tmp/out.json")"
w1=$("$HERD" generate -m "$MODEL" -p "The cat" -n 6 --temp 0 -t 1 --json 2>/dev/null | jq -r .text)
[ "$(jq -r '.array[1].text' "$tmp/out.json")" = "$w1" ] || fail "array prompt 1: '$(jq -r '.array[1].text' "$tmp/out.json")' != '$w1'"
jq -e '.chat_stream.chunks >= 2 and (.chat_stream.text | length > 0) and .chat_stream.finish != null' \
	"$tmp/out.json" >/dev/null || fail "streamed chat: $(jq -c .chat_stream "$tmp/out.json")"
jq -e '.chat.text == .chat_stream.text and .chat.role == "assistant" and .chat.usage.completion_tokens > 0' \
	"$tmp/out.json" >/dev/null || fail "chat (plain) differs from streamed: $(jq -c '[.chat, .chat_stream]' "$tmp/out.json")"
jq -e '.bad_model.status == 404' "$tmp/out.json" >/dev/null || fail "unknown model: $(jq -c .bad_model "$tmp/out.json")"

stop_node A
stop_node B
finish
