//! Chat templates: the model's own Jinja template (from tokenizer_config.json or GGUF metadata)
//! rendered with minijinja (with Python-compatible string methods), or a built-in template per
//! family when the model ships none.
//!
//! A template comes from a model file, so it is run on a budget: minijinja's fuel
//! ([`FUEL`] steps, data it builds counted too, a huge allocation refused before it happens) and
//! an output cap ([`output_cap`]), so a template that loops without end or builds gigabytes of
//! text is an error naming where the template came from, never a hang or an exhausted memory.

use anyhow::{Context, Result, anyhow, bail};
use minijinja::{Environment, Value, context};

use super::{Message, Role};

/// ChatML, as Qwen2/Qwen3 use it.
pub const CHATML: &str = "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// Llama 3 headers.
pub const LLAMA3: &str = "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message.role }}<|end_header_id|>\n\n{{ message.content | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";

/// Phi-3.
pub const PHI3: &str = "{% for message in messages %}<|{{ message.role }}|>\n{{ message.content }}<|end|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}";

/// Gemma: turns of `user` and `model`; no system role, so a system message opens the first
/// user turn.
pub const GEMMA: &str = "{{ bos_token }}{% if messages[0].role == 'system' %}{% set prefix = messages[0].content | trim ~ '\n\n' %}{% set turns = messages[1:] %}{% else %}{% set prefix = '' %}{% set turns = messages %}{% endif %}{% for message in turns %}<start_of_turn>{% if message.role == 'assistant' %}model{% else %}{{ message.role }}{% endif %}\n{% if loop.first %}{{ prefix }}{% endif %}{{ message.content | trim }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}";

/// The built-in template of an architecture's family (for a model that ships none).
pub fn builtin(arch: super::arch::Arch) -> &'static str {
    use super::arch::Arch;
    match arch {
        Arch::Qwen2 | Arch::Qwen3 => CHATML,
        Arch::Llama | Arch::Mistral => LLAMA3,
        Arch::Phi3 => PHI3,
        Arch::Gemma3 => GEMMA,
    }
}

/// The steps (minijinja fuel: one per instruction, one per 64 bytes of text or data built) one
/// render may take. Real templates take a few thousand for a tuning conversation; this bounds
/// a hostile one to a fraction of a second and about 64 MB of data.
pub const FUEL: u64 = 1_000_000;

/// The most a render may write for messages of `content_bytes` bytes: the messages four times
/// over plus 1 MiB of template text (real templates add a few hundred bytes per message).
pub fn output_cap(content_bytes: usize) -> usize {
    content_bytes.saturating_mul(4).saturating_add(1 << 20)
}

/// Collects a render's output, refusing to grow past a cap.
struct Capped {
    out: Vec<u8>,
    cap: usize,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.cap {
            self.over = true;
            return Err(std::io::Error::other("the output cap is reached"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    pub bos_token: String,
    pub eos_token: String,
    /// Where the template came from, for errors (a file, the GGUF metadata, a built-in).
    origin: String,
}

impl ChatTemplate {
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate> {
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_template_owned("chat", source.to_string())
            .context("the chat template does not parse")?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
            origin: "the chat template".to_string(),
        })
    }

    /// Say where the template came from (`the chat template of FILE`), for errors.
    pub fn named(mut self, origin: impl Into<String>) -> ChatTemplate {
        self.origin = origin.into();
        self
    }

    /// Render the conversation, ending with the assistant's turn opened when asked; within
    /// [`FUEL`] and [`output_cap`], or an error naming the template.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let tmpl = self.env.get_template("chat").map_err(|e| anyhow!("{e}"))?;
        let content_bytes: usize = messages.iter().map(|m| m.content.len()).sum();
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                let mut map = std::collections::BTreeMap::new();
                map.insert("role".to_string(), Value::from(role));
                map.insert("content".to_string(), Value::from(m.content.as_str()));
                Value::from(map)
            })
            .collect();
        let mut out = Capped {
            out: Vec::new(),
            cap: output_cap(content_bytes),
            over: false,
        };
        let rendered = tmpl.render_captured_to(
            context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            },
            &mut out,
        );
        let origin = &self.origin;
        match rendered {
            Ok(_) => String::from_utf8(out.out)
                .map_err(|_| anyhow!("{origin} rendered text that is not UTF-8")),
            Err(_) if out.over => bail!(
                "{origin} wrote more than {} bytes for {content_bytes} bytes of messages and was stopped; put a tokenizer_config.json with a working chat_template beside the model",
                out.cap
            ),
            Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => bail!(
                "{origin} used up its budget of {FUEL} steps (a loop that runs too long, or text that grows too large) and was stopped; put a tokenizer_config.json with a working chat_template beside the model"
            ),
            Err(e) => bail!("rendering {origin}: {e}"),
        }
    }
}

/// The chat template of a `tokenizer_config.json` with the bos and eos texts it renders with;
/// `None` when the file cannot be read or has no template.
pub fn from_tokenizer_config(path: &std::path::Path) -> Option<(String, String, String)> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let tmpl = v.get("chat_template")?.as_str()?.to_string();
    let tok = |k: &str| {
        v.get(k)
            .and_then(|t| {
                t.as_str()
                    .map(str::to_string)
                    .or_else(|| t.get("content")?.as_str().map(str::to_string))
            })
            .unwrap_or_default()
    };
    Some((tmpl, tok("bos_token"), tok("eos_token")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_renders_turns_and_the_generation_prompt() {
        let t = ChatTemplate::new(CHATML, "", "<|im_end|>").unwrap();
        let out = t
            .render(&[Message::system("be brief"), Message::user("hi")], true)
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn hf_style_templates_with_python_methods_render() {
        // The shape of real templates: .strip(), raise_exception, loop.first.
        let src = "{% for m in messages %}{% if m.role not in ['user','system','assistant'] %}{{ raise_exception('bad role') }}{% endif %}{% if loop.first %}{{ bos_token }}{% endif %}[{{ m.role|upper }}] {{ m.content.strip() }}\n{% endfor %}";
        let t = ChatTemplate::new(src, "<s>", "</s>").unwrap();
        let out = t.render(&[Message::user("  hello  ")], false).unwrap();
        assert_eq!(out, "<s>[USER] hello\n");
        assert!(ChatTemplate::new("{% for %}", "", "").is_err());
    }

    /// A template that would loop for ever, one that would build gigabytes in memory and one
    /// that would write them: each stops at once with an error naming where it came from.
    #[test]
    fn a_hostile_template_is_stopped_by_its_budget_and_named() {
        let msgs = [Message::user("hi")];
        for (what, src, says) in [
            (
                "nested loops",
                "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}.{% endfor %}{% endfor %}{% endfor %}",
                "budget",
            ),
            (
                "a string that grows",
                "{% set ns = namespace(s='') %}{% for i in range(1000) %}{% set ns.s = ns.s ~ ('x' * 100000000) %}{% endfor %}{{ ns.s|length }}",
                "budget",
            ),
            (
                "output",
                "{% for i in range(100) %}{{ 'x' * 1000000 }}{% endfor %}",
                "wrote more than",
            ),
        ] {
            let t = ChatTemplate::new(src, "", "")
                .unwrap()
                .named("the chat template of /models/evil.gguf");
            let started = std::time::Instant::now();
            let err = t.render(&msgs, true).unwrap_err().to_string();
            assert!(
                err.contains("/models/evil.gguf") && err.contains(says),
                "{what}: {err}"
            );
            // No speed assertion: the budget, not a clock, stops it. Said for the record.
            eprintln!("{what}: stopped after {:?}", started.elapsed());
        }
        // A real template still renders a long conversation well within the budget.
        let t = ChatTemplate::new(CHATML, "", "").unwrap();
        let long: Vec<Message> = (0..64)
            .map(|i| Message::user(format!("turn {i}: {}", "word ".repeat(2000))))
            .collect();
        assert!(t.render(&long, true).unwrap().len() > 64 * 10_000);
    }

    #[test]
    fn every_family_has_a_builtin_that_renders() {
        for fam in crate::llm::arch::Arch::ALL {
            let t = ChatTemplate::new(builtin(fam), "<s>", "</s>").unwrap();
            let out = t.render(&[Message::user("ping")], true).unwrap();
            assert!(out.contains("ping"), "{fam}: {out}");
        }
    }

    #[test]
    fn gemma_folds_the_system_message_into_the_first_user_turn() {
        let t = ChatTemplate::new(GEMMA, "<bos>", "<eos>").unwrap();
        let out = t
            .render(
                &[
                    Message::system("be brief"),
                    Message::user("hi"),
                    Message::assistant("hello"),
                    Message::user("again"),
                ],
                true,
            )
            .unwrap();
        assert_eq!(
            out,
            "<bos><start_of_turn>user\nbe brief\n\nhi<end_of_turn>\n<start_of_turn>model\nhello<end_of_turn>\n<start_of_turn>user\nagain<end_of_turn>\n<start_of_turn>model\n"
        );
    }
}
