//! Choosing the proposer: the backends (`tune --backend`, a compare proposer spec such as
//! `local:MODEL`, a journal's recorded backend on `--resume`), what choosing one needs, and the
//! choice itself — a local model, an OpenAI-compatible endpoint (an Ollama behind it spoken to
//! natively), Ollama, LM Studio, the expert rules or random changes, `auto` picking among them,
//! and a local model handing over to the endpoint when it fails. The command line only parses
//! flags into a [`Request`] and prints the reason given back.

use std::time::Duration;

use anyhow::{Result, bail};

use super::expert::ExpertProposer;
use super::journal::Settings;
use super::prompt::HintLevel;
use super::proposer::{Fallback, LlmProposer, Proposer, RandomProposer};
use crate::grammar::{GrammarEnv, schema};
use crate::llm::ollama::OllamaBackend;
use crate::llm::openai::{ApiKey, Endpoint, OpenAiBackend};
use crate::llm::servers::{self, Server};
use crate::llm::{GenParams, local::LocalModel};

/// Who proposes changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// A local model if one resolves (--model, else the best-suited one already on disk in any
    /// store: Ollama, LM Studio, the HF cache, the models folder; `models list` marks it), else
    /// the endpoint if configured, else the expert rules.
    Auto,
    /// A model run here, under the proposal grammar (--model: a file, a name, ollama:NAME...).
    Local,
    /// An OpenAI-compatible endpoint (--openai-base-url or OPENAI_BASE_URL); when it is an
    /// Ollama, its native API is used instead, with a context window that fits the conversation.
    Openai,
    /// A running Ollama (OLLAMA_HOST, default http://127.0.0.1:11434) through its native API,
    /// with num_ctx set to fit the whole conversation. --model names the model (default: the
    /// only one it has, else the only one loaded).
    Ollama,
    /// LM Studio's server (default http://127.0.0.1:1234/v1). --model names the model (default:
    /// the only one it lists, else the only one loaded).
    Lmstudio,
    /// The built-in rule-based expert.
    Expert,
    /// Valid random changes (a baseline).
    Random,
    /// A value search on its own over the options that matter for the workload
    /// (--search-method; the headroom search, and a baseline).
    Search,
}

impl Backend {
    /// The name settings record (`auto`, `local`, `openai`, `ollama`, `lmstudio`, `expert`,
    /// `random`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Local => "local",
            Backend::Openai => "openai",
            Backend::Ollama => "ollama",
            Backend::Lmstudio => "lmstudio",
            Backend::Expert => "expert",
            Backend::Random => "random",
            Backend::Search => "search",
        }
    }

    /// The backend a recorded name stands for (anything else: `auto`).
    pub fn from_name(name: &str) -> Backend {
        match name {
            "local" => Backend::Local,
            "openai" => Backend::Openai,
            "ollama" => Backend::Ollama,
            "lmstudio" => Backend::Lmstudio,
            "expert" => Backend::Expert,
            "random" => Backend::Random,
            "search" => Backend::Search,
            _ => Backend::Auto,
        }
    }
}

/// A proposer as named on the command line: `local:MODEL`, `openai:MODEL`, `ollama[:MODEL]`,
/// `lmstudio[:MODEL]`, `expert`, `random`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposerSpec {
    Local(String),
    OpenAi(String),
    /// A running Ollama; the model's name there (empty: the one it has or has loaded).
    Ollama(String),
    /// LM Studio's server; the model's name there (empty: the one it has loaded).
    LmStudio(String),
    Expert,
    Random,
    /// A value search on its own, with its optimizer.
    Search(crate::tune::search::Method),
}

impl ProposerSpec {
    pub fn parse(text: &str) -> Result<ProposerSpec> {
        let t = text.trim();
        Ok(match t.split_once(':') {
            Some(("local", m)) if !m.is_empty() => ProposerSpec::Local(m.to_string()),
            Some(("openai", m)) if !m.is_empty() => ProposerSpec::OpenAi(m.to_string()),
            Some(("ollama", m)) => ProposerSpec::Ollama(m.trim().to_string()),
            Some(("lmstudio", m)) => ProposerSpec::LmStudio(m.trim().to_string()),
            None if t == "ollama" => ProposerSpec::Ollama(String::new()),
            None if t == "lmstudio" => ProposerSpec::LmStudio(String::new()),
            None if t == "expert" => ProposerSpec::Expert,
            None if t == "random" => ProposerSpec::Random,
            None if t == "search" => ProposerSpec::Search(Default::default()),
            Some(("search", "tpe")) => ProposerSpec::Search(crate::tune::search::Method::Tpe),
            Some(("search", "gp")) => ProposerSpec::Search(crate::tune::search::Method::Gp),
            _ => bail!(
                "proposer `{t}`: use local:MODEL, openai:MODEL, ollama[:MODEL], lmstudio[:MODEL], expert, random or search[:tpe|gp]"
            ),
        })
    }

    /// The backend that runs it.
    pub fn backend(&self) -> Backend {
        match self {
            ProposerSpec::Local(_) => Backend::Local,
            ProposerSpec::OpenAi(_) => Backend::Openai,
            ProposerSpec::Ollama(_) => Backend::Ollama,
            ProposerSpec::LmStudio(_) => Backend::Lmstudio,
            ProposerSpec::Expert => Backend::Expert,
            ProposerSpec::Random => Backend::Random,
            ProposerSpec::Search(_) => Backend::Search,
        }
    }

    /// The model it names, if any (as a tune's settings record it).
    pub fn model(&self) -> Option<String> {
        match self {
            ProposerSpec::Local(m)
            | ProposerSpec::OpenAi(m)
            | ProposerSpec::Ollama(m)
            | ProposerSpec::LmStudio(m) => Some(m.clone()).filter(|m| !m.is_empty()),
            ProposerSpec::Expert | ProposerSpec::Random | ProposerSpec::Search(_) => None,
        }
    }

    /// Ask for this proposer in `req`: its backend, and its model as `--model` (or
    /// `--openai-model` for an endpoint) would name it.
    pub fn apply(&self, req: &mut Request) {
        req.backend = self.backend();
        (req.model, req.openai_model) = match self {
            ProposerSpec::OpenAi(_) => (None, self.model()),
            _ => (self.model(), None),
        };
    }

    /// Whether it is a language model (asked with a hint level).
    pub fn is_model(&self) -> bool {
        matches!(self, ProposerSpec::Local(_) | ProposerSpec::OpenAi(_))
    }

    /// As written on the command line.
    pub fn label(&self) -> String {
        match self {
            ProposerSpec::Local(m) => format!("local:{m}"),
            ProposerSpec::OpenAi(m) => format!("openai:{m}"),
            ProposerSpec::Ollama(m) if m.is_empty() => "ollama".into(),
            ProposerSpec::Ollama(m) => format!("ollama:{m}"),
            ProposerSpec::LmStudio(m) if m.is_empty() => "lmstudio".into(),
            ProposerSpec::LmStudio(m) => format!("lmstudio:{m}"),
            ProposerSpec::Expert => "expert".into(),
            ProposerSpec::Random => "random".into(),
            ProposerSpec::Search(m) => format!("search:{}", m.name()),
        }
    }

    /// A folder name for the label.
    pub fn slug(&self) -> String {
        self.label()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

/// Where the OpenAI-compatible endpoint (or the Ollama / LM Studio server) is.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    /// Up to /v1 (None: OPENAI_BASE_URL; for Ollama and LM Studio, their default address).
    pub base_url: Option<String>,
    /// The environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// Per request.
    pub timeout: Duration,
}

/// What choosing a proposer needs (from `tune`'s flags, a journal's settings on resume, or a
/// `compare` proposer spec).
#[derive(Debug, Clone)]
pub struct Request {
    pub backend: Backend,
    pub model: Option<String>,
    pub offline: bool,
    pub endpoint: EndpointOptions,
    pub openai_model: Option<String>,
    pub temperature: f64,
    pub max_tokens: usize,
    pub seed: u64,
    pub hints: HintLevel,
    /// Replies per turn; 0 = 3 for a local model, 1 for an endpoint.
    pub samples: usize,
}

impl Request {
    /// The model a tune's settings record: the server's model for Ollama and LM Studio
    /// (`--model`, else `--openai-model`), else `--model`.
    pub fn recorded_model(&self) -> Option<String> {
        match self.backend {
            Backend::Ollama | Backend::Lmstudio => {
                self.model.clone().or_else(|| self.openai_model.clone())
            }
            _ => self.model.clone(),
        }
    }

    /// Ask for the same kind of proposer a journaled tune had (`--resume`): its backend, its
    /// model unless one is given, its seed, hint level and samples.
    pub fn resuming(&mut self, settings: &Settings) {
        self.backend = Backend::from_name(&settings.backend);
        if self.model.is_none() {
            self.model = settings.model.clone();
        }
        self.seed = settings.seed;
        self.hints = settings.hints;
        self.samples = settings.samples;
    }
}

/// Build the proposer `args` asks for, and say why (in one line, for the journal and report).
/// A language model's kept choices are refined by a value search when the settings ask for it
/// ([`crate::tune::hybrid`]).
pub fn choose(args: &Request, settings: &Settings) -> Result<(Box<dyn Proposer>, String)> {
    let (p, why) = choose_plain(args, settings)?;
    if settings.search && p.variant().is_some() {
        let method = settings.search_method;
        return Ok((
            Box::new(crate::tune::hybrid::Hybrid::new(p, method, args.seed)),
            format!(
                "{why}; a {} value search refines the options it keeps",
                method.name()
            ),
        ));
    }
    Ok((p, why))
}

/// The proposer `args` asks for, as it is.
fn choose_plain(args: &Request, settings: &Settings) -> Result<(Box<dyn Proposer>, String)> {
    let b = Builder::new(args, settings)?;
    match args.backend {
        Backend::Expert => Ok((
            Box::new(ExpertProposer),
            "asked for (--backend expert)".into(),
        )),
        Backend::Random => Ok((
            Box::new(RandomProposer::new(args.seed)),
            "asked for (--backend random)".into(),
        )),
        Backend::Search => Ok((
            Box::new(crate::tune::search::SearchProposer::new(
                settings.search_method,
                args.seed,
            )),
            format!(
                "asked for (--backend search, {})",
                settings.search_method.name()
            ),
        )),
        Backend::Openai => match b.endpoint.clone() {
            Some(e) => {
                let (p, how) = b.remote(e)?;
                Ok((p, format!("asked for (--backend openai){how}")))
            }
            None => bail!(
                "--backend openai needs an endpoint: --openai-base-url URL (or OPENAI_BASE_URL), and the key in ${}",
                b.key_var
            ),
        },
        Backend::Ollama => {
            let root = servers::ollama_root(args.endpoint.base_url.as_deref());
            let (p, how) = b.ollama_at(
                &root,
                b.server_model("ollama:").as_deref(),
                b.server_key.clone(),
            )?;
            Ok((p, format!("asked for (--backend ollama): {how}")))
        }
        Backend::Lmstudio => b.lmstudio(),
        Backend::Local => b.local_asked(),
        Backend::Auto => b.auto(),
    }
}

/// What every proposer choice shares: the schema, the sampling, the endpoint (if configured),
/// the key for a local server, and whether downloads are off.
struct Builder<'a> {
    args: &'a Request,
    proposal_schema: serde_json::Value,
    params: GenParams,
    key_var: String,
    timeout: Duration,
    endpoint: Option<Endpoint>,
    /// The model named for the endpoint (not the gpt-4o default), for an Ollama found behind it.
    named_for_endpoint: Option<String>,
    server_key: Option<ApiKey>,
    offline: bool,
}

impl<'a> Builder<'a> {
    fn new(args: &'a Request, settings: &Settings) -> Result<Builder<'a>> {
        let catalog = crate::options::catalog()?;
        let opts = schema::SchemaOptions {
            max_changes: settings.max_changes,
            allow_unsafe: settings.allow_unsafe,
            reasoning_chars: settings.reasoning_chars,
        };
        let key_var = args
            .endpoint
            .api_key_env
            .clone()
            .unwrap_or_else(|| "OPENAI_API_KEY".into());
        let timeout = args.endpoint.timeout;
        if let Some(u) = &args.endpoint.base_url {
            crate::llm::openai::check_base_url(u)?;
        }
        let endpoint = Endpoint::from_env(
            args.endpoint.base_url.clone(),
            args.openai_model.clone(),
            &key_var,
        )?
        .map(|mut e| {
            e.timeout = timeout;
            e
        });
        let server_key = args
            .endpoint
            .api_key_env
            .as_deref()
            .map(ApiKey::from_env)
            .transpose()?
            .flatten();
        Ok(Builder {
            args,
            proposal_schema: schema::proposal_schema(catalog, &opts),
            params: GenParams {
                max_tokens: args.max_tokens,
                temperature: args.temperature,
                seed: args.seed,
                ..GenParams::default()
            },
            key_var,
            timeout,
            endpoint,
            named_for_endpoint: args.openai_model.clone().or_else(|| {
                std::env::var("OPENAI_MODEL")
                    .ok()
                    .filter(|m| !m.trim().is_empty())
            }),
            server_key,
            offline: args.offline || crate::http::offline_from_env(),
        })
    }

    /// Replies per turn: `--samples`, else the backend's default.
    fn samples(&self, default: usize) -> usize {
        if self.args.samples == 0 {
            default
        } else {
            self.args.samples
        }
    }

    /// A proposer asking `llm` (one reply per turn unless --samples).
    fn llm_proposer(&self, llm: Box<dyn crate::llm::Llm>) -> Box<dyn Proposer> {
        Box::new(LlmProposer::new(
            llm,
            None,
            self.params.clone(),
            self.args.hints,
            self.samples(1),
        ))
    }

    fn openai(&self, e: Endpoint) -> Box<dyn Proposer> {
        self.llm_proposer(Box::new(OpenAiBackend::new(
            e,
            Some(self.proposal_schema.clone()),
        )))
    }

    /// Ollama's native API: the model named, else the one it has or has loaded.
    fn ollama_at(
        &self,
        root: &str,
        named: Option<&str>,
        key: Option<ApiKey>,
    ) -> Result<(Box<dyn Proposer>, String)> {
        let root = servers::native_root(root);
        let (model, how) = servers::pick_model(
            Server::Ollama,
            &format!("{root}/v1"),
            named,
            key.as_ref(),
            self.timeout,
        )?;
        let mut b = OllamaBackend::new(
            &root,
            &model,
            key,
            self.timeout,
            Some(self.proposal_schema.clone()),
        );
        b.probe_context();
        let window = match b.context_length {
            Some(n) => format!("num_ctx sized to the conversation, at most the model's {n}"),
            None => "num_ctx sized to the conversation".into(),
        };
        let how = if how.is_empty() {
            String::new()
        } else {
            format!("; {how}")
        };
        Ok((
            self.llm_proposer(Box::new(b)),
            format!("Ollama's native /api/chat, {window}{how}"),
        ))
    }

    /// An OpenAI-compatible endpoint, unless it is an Ollama: then its native API, since its
    /// OpenAI route silently cuts prompts at a 2-4k token window.
    fn remote(&self, e: Endpoint) -> Result<(Box<dyn Proposer>, String)> {
        if servers::is_ollama(&e.base_url, e.timeout) {
            let (p, how) = self.ollama_at(
                &e.base_url,
                self.named_for_endpoint.as_deref(),
                e.api_key.clone(),
            )?;
            return Ok((p, format!("; {} is an Ollama: {how}", e.base_url)));
        }
        Ok((self.openai(e), String::new()))
    }

    /// The model named for a local server, without its `ollama:` / `lmstudio:` prefix.
    fn server_model(&self, prefix: &str) -> Option<String> {
        self.args
            .model
            .clone()
            .or_else(|| self.args.openai_model.clone())
            .map(|m| m.strip_prefix(prefix).map(str::to_string).unwrap_or(m))
    }

    /// A local model, loaded, under its grammar (three replies per turn unless --samples).
    fn local(&self, spec: &str) -> Result<Box<dyn Proposer>> {
        let files = crate::llm::hub::Hub::from_env().find(spec, self.offline)?;
        let m = LocalModel::load(&files)?;
        for note in m.notes() {
            tracing::info!("{note}");
        }
        let g = GrammarEnv::new(m.tokenizer(), m.eos_tokens())?;
        Ok(Box::new(LlmProposer::new(
            Box::new(m),
            Some(g),
            self.params.clone(),
            self.args.hints,
            self.samples(3),
        )))
    }

    /// A local model failing mid-run hands over to the endpoint when there is one.
    fn with_fallback(&self, p: Box<dyn Proposer>) -> Box<dyn Proposer> {
        match &self.endpoint {
            Some(e) => {
                let secondary = self
                    .remote(e.clone())
                    .map(|(s, _)| s)
                    .unwrap_or_else(|_| self.openai(e.clone()));
                Box::new(Fallback::new(p, Some(secondary)))
            }
            None => p,
        }
    }

    /// `--backend lmstudio`: its OpenAI-compatible API with the model named or loaded.
    fn lmstudio(&self) -> Result<(Box<dyn Proposer>, String)> {
        let base = servers::lmstudio_base(self.args.endpoint.base_url.as_deref());
        let key = self.server_key.clone();
        let (model, how) = servers::pick_model(
            Server::LmStudio,
            &base,
            self.server_model("lmstudio:").as_deref(),
            key.as_ref(),
            self.timeout,
        )?;
        let e = Endpoint {
            base_url: base,
            model,
            api_key: key,
            timeout: self.timeout,
            max_retries: 4,
            backoff: Duration::from_millis(500),
        };
        let b = OpenAiBackend::new(e, Some(self.proposal_schema.clone())).labelled("lmstudio");
        Ok((
            self.llm_proposer(Box::new(b)),
            if how.is_empty() {
                "asked for (--backend lmstudio)".to_string()
            } else {
                format!("asked for (--backend lmstudio): {how}")
            },
        ))
    }

    /// `--backend local`: the model named, the endpoint when it cannot be loaded.
    fn local_asked(&self) -> Result<(Box<dyn Proposer>, String)> {
        let Some(spec) = &self.args.model else {
            bail!("--backend local needs --model (see `lsmtune models list`)");
        };
        match (self.local(spec), &self.endpoint) {
            (Ok(p), _) => Ok((self.with_fallback(p), "asked for (--backend local)".into())),
            (Err(e), Some(ep)) => {
                let (p, how) = self.remote(ep.clone())?;
                Ok((
                    p,
                    format!(
                        "the local model could not be loaded ({e:#}); using the configured endpoint{how}"
                    ),
                ))
            }
            (Err(e), None) => Err(e),
        }
    }

    /// `--backend auto`: a local model (named or found), else the endpoint, else the expert.
    fn auto(&self) -> Result<(Box<dyn Proposer>, String)> {
        // A model named, else the one the user already has that suits tuning best.
        let (spec, picked) = match &self.args.model {
            Some(m) => (Some(m.clone()), None),
            None => {
                let hub = crate::llm::hub::Hub::from_env();
                let mut stock = crate::llm::inventory::take_stock(&hub);
                match crate::llm::pick::choose(&mut stock, crate::sysinfo::total_memory()) {
                    Ok(p) => (Some(p.name), Some(p.why)),
                    Err(why) => (None, Some(why)),
                }
            }
        };
        let tried_local = spec.as_ref().map(|s| (s.clone(), self.local(s)));
        let found = |s: &str| match &picked {
            Some(why) => format!("auto: picked the local model {s}, {why}"),
            None => format!("auto: local model {s}"),
        };
        let none_found = match &picked {
            Some(why) => why.clone(),
            None => "no local model found".into(),
        };
        Ok(match (tried_local, self.endpoint.clone()) {
            (Some((s, Ok(p))), _) => (self.with_fallback(p), found(&s)),
            (Some((s, Err(e))), Some(ep)) => {
                let (p, how) = self.remote(ep)?;
                (
                    p,
                    format!(
                        "auto: local model {s} failed to load ({e:#}); the endpoint is configured{how}"
                    ),
                )
            }
            (None, Some(ep)) => {
                let (p, how) = self.remote(ep)?;
                (
                    p,
                    format!("auto: {none_found}; the endpoint is configured{how}"),
                )
            }
            (Some((s, Err(e))), None) => (
                Box::new(ExpertProposer),
                format!(
                    "auto: local model {s} failed to load ({e:#}) and no endpoint is configured: using the built-in expert rules"
                ),
            ),
            (None, None) => (
                Box::new(ExpertProposer),
                format!(
                    "auto: {none_found}, and no endpoint configured (OPENAI_BASE_URL): using the built-in expert rules"
                ),
            ),
        })
    }
}
