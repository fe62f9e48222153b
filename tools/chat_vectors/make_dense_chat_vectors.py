#!/usr/bin/python3
"""Reference renderings of the dense models' chat templates, made by a real template engine.

Renders each template of shared/chat-templates-dense (DeepSeek-R1-Distill-Qwen-32B, DeepSeek-R1-Distill-Llama-8B,
Qwen2.5-7B-Instruct, Llama-3.1-8B-Instruct) over a set of conversations the way transformers'
apply_chat_template renders it: jinja2's ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True),
tojson = json.dumps(ensure_ascii=False, indent=...), a raise_exception(msg) global, and the variables
messages, tools, documents, add_generation_prompt and the special tokens that are set.

Writes tests/data/chat/<template>.jsonl, one record per line:
  {"id", "template": file name, "format": dseek's built-in name, "bos_token", "eos_token", "messages",
   "tools", "add_generation_prompt", and either "rendered" (the text) or "error" (what the template raised)}

Uses Debian's python3-jinja2:
  /usr/bin/python3 tools/chat_vectors/make_dense_chat_vectors.py [--templates DIR] [--out DIR]
"""
import argparse
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

DS_BOS, DS_EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"


def make_env():
    def raise_exception(message):
        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def user(c):
    return {"role": "user", "content": c}


def assistant(c):
    return {"role": "assistant", "content": c}


def system(c):
    return {"role": "system", "content": c}


def tool(c):
    return {"role": "tool", "content": c}


def call(name, arguments, wrapped=True):
    if not wrapped:
        return {"name": name, "arguments": arguments}
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather at a place: \"city, country\"\nor coordinates (é, 東京).",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 14},
            },
            "required": ["location"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}, "k": {"type": "number"}},
                       "required": [], "strict": True, "extra": None},
    },
}
ODD_ARGS = {"zeta": 1, "alpha": [1, 2.5, -0.0, 1e20, 1e-07, 3.0, 12345678901234567890, True, None],
            "nested": {"b": {}, "a": [], "ünï": "tab\there \"q\" back\\slash \u0001 \u007f 😀"}}

# Conversations every template renders; (name, messages, tools, add_generation_prompt).
COMMON = [
    ("single-user", [user("Hello!")], None, True),
    ("single-user-no-prompt", [user("Hello!")], None, False),
    ("system-user", [system("You are terse."), user("2+2?")], None, True),
    ("system-user-assistant", [system("You are terse."), user("2+2?"), assistant("4")], None, False),
    ("multi-turn", [user("Hi"), assistant("Hello, how can I help?"), user("Name a prime."), assistant("7"),
                    user("Another?")], None, True),
    ("think-earlier", [user("2+2?"), assistant("<think>\nadd them\n</think>\n\n4"), user("3+3?")], None, True),
    ("think-last", [user("2+2?"), assistant("<think>\nadd them\n</think>\n\nThe answer is 4.")], None, False),
    ("two-systems", [system("First rule."), user("a"), system("Second rule."), user("b")], None, True),
    ("system-only", [system("Only a system prompt.")], None, True),
    ("empty-contents", [system(""), user(""), assistant("")], None, False),
    ("special-token-text", [user("say <|im_end|> and <|eot_id|> and <｜end▁of▁sentence｜> and <think>"),
                            assistant("<|im_start|>no<|start_header_id|>")], None, True),
    ("unicode", [user("Grüße, 東京 👋🏽 مرحبا e\u0301 \u00a0nbsp"), assistant("Привет! 😀 ½ Ⅻ")], None, False),
    ("whitespace-edges", [system("\n  sys \t"), user("\u3000 spaced\u00a0\u2028"), assistant(" \u200bzero-width\u200b \n"),
                          user("\u001cfs\u001f\r\n")], None, True),
    ("long-multi-turn", sum(([user(f"question {i}"), assistant(f"answer {i}")] for i in range(6)), []), None, True),
]

DEEPSEEK_TOOLS = [
    ("tool-round", [user("Weather in Paris?"),
                    {"role": "assistant", "content": None,
                     "tool_calls": [call("get_weather", "{\"location\": \"Paris\"}")]},
                    tool("18C, sunny"), assistant("It is 18C and sunny.")], None, True),
    ("tool-two-calls-two-rounds", [system("Use tools."), user("Compare Paris and Oslo."),
                                   {"role": "assistant", "content": None,
                                    "tool_calls": [call("get_weather", "{\"location\": \"Paris\"}"),
                                                   call("get_weather", "{\"location\": \"Oslo\"}")]},
                                   tool("18C"), tool("4C"), assistant("Paris is warmer."), user("And Rome?"),
                                   {"role": "assistant", "content": None,
                                    "tool_calls": [call("get_weather", "{\"location\": \"Rome\"}")]},
                                   tool("22C")], None, True),
    ("trailing-tool", [user("Weather?"), {"role": "assistant", "content": None,
                                          "tool_calls": [call("get_weather", "{}")]}, tool("rain")], None, False),
    ("empty-messages", [], None, True),
]

QWEN_TOOLS = [
    ("tools-system", [system("You help with weather."), user("Weather in Paris?")], [WEATHER_TOOL, SEARCH_TOOL], True),
    ("tools-default-system", [user("Weather in Paris?")], [WEATHER_TOOL], True),
    ("tools-empty-list", [user("Hi")], [], True),
    ("tool-round-dict-args", [user("Weather in Paris and Oslo?"),
                              {"role": "assistant", "content": None,
                               "tool_calls": [call("get_weather", {"location": "Paris", "unit": "celsius"}),
                                              call("get_weather", {"unit": "fahrenheit", "location": "Oslo"})]},
                              tool("18C"), tool("40F"), assistant("Paris 18C, Oslo 40F.")], [WEATHER_TOOL], True),
    ("tool-call-with-content", [user("Search it"),
                                {"role": "assistant", "content": "Let me look.",
                                 "tool_calls": [call("search", ODD_ARGS)]},
                                tool("{\"hits\": []}")], [SEARCH_TOOL], True),
    ("tool-call-string-args-unwrapped", [user("Search it"),
                                         {"role": "assistant", "content": "",
                                          "tool_calls": [call("search", "{\"query\": \"x\"}", wrapped=False)]},
                                         tool("none found"), user("ok")], None, False),
    ("tool-first-message", [tool("orphan result"), user("next")], None, True),
    ("assistant-empty-tool-calls", [user("a"), {"role": "assistant", "content": "plain", "tool_calls": []}], None, False),
    ("unknown-role", [user("a"), {"role": "developer", "content": "ignored"}, assistant("b")], None, False),
    ("empty-messages", [], None, True),
]

LLAMA_TOOLS = [
    ("tools-in-user-message", [system("You help with weather."), user("  Weather in Paris?  "),
                               {"role": "assistant", "content": "",
                                "tool_calls": [call("get_weather", {"location": "Paris", "unit": "celsius"})]},
                               tool("18C, sunny"), assistant("It is 18C.")], [WEATHER_TOOL, SEARCH_TOOL], True),
    ("tools-no-system", [user("Weather?")], [WEATHER_TOOL], True),
    ("tools-empty-list", [user("Hi")], [], True),
    ("tool-call-odd-args", [user("Search"), {"role": "assistant", "content": None,
                                             "tool_calls": [call("search", ODD_ARGS)]},
                            {"role": "ipython", "content": {"hits": [1, 2], "note": "ok"}},
                            {"role": "tool", "content": ["a", "b"]}], None, True),
    ("tool-call-string-args", [user("Search"), {"role": "assistant", "content": None,
                                                "tool_calls": [call("search", "{\"query\": \"x\"}")]},
                               tool("plain \"quoted\" text\n")], None, False),
    ("tool-number-content", [user("n?"), tool(42), tool(None), tool(2.5)], None, True),
    ("role-verbatim", [user("a"), {"role": "developer", "content": " dev "}, assistant("b")], None, True),
    ("two-tool-calls-raise", [user("x"), {"role": "assistant", "content": None,
                                          "tool_calls": [call("a", {}), call("b", {})]}], None, True),
    ("tools-without-user-raise", [system("s")], [WEATHER_TOOL], True),
    ("empty-messages", [], None, True),
]

# file, dseek's name, bos_token, eos_token, extra conversations, more bos tokens to try (the bos differs per model)
TEMPLATES = [
    ("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", "deepseek-r1-distill", DS_BOS, DS_EOS, DEEPSEEK_TOOLS, [None]),
    ("deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", "deepseek-r1-distill", DS_BOS, DS_EOS, DEEPSEEK_TOOLS,
     ["<|begin_of_text|>"]),
    ("Qwen-Qwen2.5-7B-Instruct.jinja", "qwen2.5", None, "<|im_end|>", QWEN_TOOLS, []),
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", "llama-3.1", "<|begin_of_text|>", "<|eot_id|>", LLAMA_TOOLS, []),
]


def render(template, messages, tools, add_generation_prompt, bos, eos):
    specials = {k: v for k, v in (("bos_token", bos), ("eos_token", eos)) if v is not None}
    return template.render(messages=messages, tools=tools, documents=None,
                           add_generation_prompt=add_generation_prompt, **specials)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--templates", default=os.path.join(ROOT, "..", "shared", "chat-templates-dense"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "chat"))
    args = ap.parse_args()
    env = make_env()
    os.makedirs(args.out, exist_ok=True)
    for file, name, bos, eos, extra, more_bos in TEMPLATES:
        with open(os.path.join(args.templates, file), encoding="utf-8") as f:
            template = env.from_string(f.read())
        convs = [(n, m, t, g, bos) for n, m, t, g in COMMON + extra]
        convs += [(n + "-bos-" + str(b), m, t, g, b) for b in more_bos for n, m, t, g in COMMON[:3]]
        out_path = os.path.join(args.out, file[: -len(".jinja")] + ".jsonl")
        with open(out_path, "w", encoding="utf-8", newline="\n") as out:
            for i, (conv, messages, tools, gen, b) in enumerate(convs, 1):
                rec = {"id": f"{name}-{i:02d}-{conv}", "template": file, "format": name, "bos_token": b,
                       "eos_token": eos, "messages": messages, "tools": tools, "add_generation_prompt": gen}
                try:
                    rec["rendered"] = render(template, messages, tools, gen, b, eos)
                except Exception as e:  # what the template raises (or where Python fails on it)
                    rec["error"] = f"{type(e).__name__}: {e}"
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        print(f"{out_path}: {len(convs)} records", file=sys.stderr)


if __name__ == "__main__":
    main()
