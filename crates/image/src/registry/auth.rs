//! The distribution API's authentication: the registry answers 401 with a
//! `WWW-Authenticate` challenge; Basic wants the credentials on every request, Bearer wants
//! a token from the realm it names (fetched with the credentials, if any, for the scope of
//! the operation). Tokens are cached per scope until they expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use ureq::Agent;

use super::credentials::Credentials;
use crate::error::{Error, Result};

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        /// The scope the registry asked for on this request, if it said.
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parse `Scheme k="v", k2=v2`; `None` for schemes berth doesn't speak.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let params = parse_params(rest);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Challenge::Basic),
            "bearer" => Some(Challenge::Bearer {
                realm: params.get("realm")?.clone(),
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            }),
            _ => None,
        }
    }
}

/// `k="v", k2=v2` (quoted values may hold commas and `\"`).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                value.push(c);
            }
            value = value.trim().to_string();
        }
        out.insert(key.trim().to_ascii_lowercase(), value);
    }
}

struct Token {
    value: String,
    expires: Instant,
}

/// The authentication state of one registry connection, shared by the transfer threads.
pub(crate) struct Auth {
    registry: String,
    credentials: Option<Credentials>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, Token>>,
}

/// Tokens without `expires_in` live 60 s (the token spec's default).
const DEFAULT_TOKEN_LIFETIME: u64 = 60;
/// Refresh a token this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

impl Auth {
    pub(crate) fn new(registry: &str, credentials: Option<Credentials>) -> Auth {
        Auth {
            registry: registry.to_string(),
            credentials,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    pub(crate) fn challenge(&self) -> Option<Challenge> {
        self.challenge.lock().ok().and_then(|c| c.clone())
    }

    pub(crate) fn set_challenge(&self, c: Option<Challenge>) {
        if let Ok(mut g) = self.challenge.lock() {
            *g = c;
        }
    }

    fn unauthorized(&self, reason: impl Into<String>) -> Error {
        Error::Unauthorized {
            registry: self.registry.clone(),
            reason: reason.into(),
        }
    }

    fn basic(&self) -> Option<String> {
        self.credentials.as_ref().map(|c| {
            let raw = format!("{}:{}", c.username, c.password);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        })
    }

    /// The `Authorization` header for a request within `scope`; `fresh` drops a cached
    /// token first (the registry refused it).
    pub(crate) fn header(&self, agent: &Agent, scope: &str, fresh: bool) -> Result<Option<String>> {
        match self.challenge() {
            None => Ok(None),
            Some(Challenge::Basic) => match self.basic() {
                Some(h) => Ok(Some(h)),
                None => Err(self.unauthorized(
                    "the registry wants a user name and password (berth login, or --creds)",
                )),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope: asked,
            }) => {
                let scope = asked.as_deref().unwrap_or(scope);
                let mut tokens = self
                    .tokens
                    .lock()
                    .map_err(|_| self.unauthorized("token cache poisoned"))?;
                if fresh {
                    tokens.remove(scope);
                }
                if let Some(t) = tokens.get(scope) {
                    if Instant::now() + TOKEN_MARGIN < t.expires {
                        return Ok(Some(format!("Bearer {}", t.value)));
                    }
                }
                let t = self.fetch_token(agent, &realm, service.as_deref(), Some(scope))?;
                let h = format!("Bearer {}", t.value);
                tokens.insert(scope.to_string(), t);
                Ok(Some(h))
            }
        }
    }

    /// `berth login`: prove the credentials work, whatever the challenge.
    pub(crate) fn verify(&self, agent: &Agent) -> Result<bool> {
        match self.challenge() {
            Some(Challenge::Bearer { realm, service, .. }) => {
                self.fetch_token(agent, &realm, service.as_deref(), None)?;
                Ok(true)
            }
            // Basic: the caller repeats GET /v2/ with the header.
            _ => Ok(false),
        }
    }

    fn fetch_token(
        &self,
        agent: &Agent,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<Token> {
        let what = format!("token server {realm}");
        let mut req = agent.get(realm);
        if let Some(s) = service {
            req = req.query("service", s);
        }
        // Several scopes (a push that mounts from another repository) are several params.
        for s in scope.into_iter().flat_map(str::split_whitespace) {
            req = req.query("scope", s);
        }
        if let Some(c) = &self.credentials {
            req = req.query("account", &c.username);
        }
        if let Some(h) = self.basic() {
            req = req.header("Authorization", &h);
        }
        let mut resp = req.call().map_err(|e| Error::Registry {
            reference: self.registry.clone(),
            reason: format!("{what}: {e}"),
        })?;
        match resp.status().as_u16() {
            200 => {}
            401 | 403 => {
                return Err(self.unauthorized(if self.credentials.is_some() {
                    format!("{what} refused the user name and password")
                } else {
                    format!("{what} wants a user name and password (berth login, or --creds)")
                }))
            }
            s => {
                return Err(Error::Registry {
                    reference: self.registry.clone(),
                    reason: format!("{what}: HTTP {s}"),
                })
            }
        }
        #[derive(serde::Deserialize)]
        struct Reply {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| Error::Registry {
                reference: self.registry.clone(),
                reason: format!("{what}: {e}"),
            })?;
        let reply: Reply = crate::spec::parse(&body, what.clone())?;
        let value = reply
            .token
            .or(reply.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Registry {
                reference: self.registry.clone(),
                reason: format!("{what}: no token in the reply"),
            })?;
        Ok(Token {
            value,
            expires: Instant::now()
                + Duration::from_secs(reply.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.example/token",service="reg, 1",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("reg, 1".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse("bearer realm=http://x/t, service=s"),
            Some(Challenge::Bearer {
                realm: "http://x/t".into(),
                service: Some("s".into()),
                scope: None,
            })
        );
        assert_eq!(Challenge::parse("Bearer service=s"), None);
        assert_eq!(Challenge::parse("Negotiate"), None);
    }
}
