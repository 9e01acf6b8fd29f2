//! Line numbers of services and their `ports` entries in a compose file's text.
//!
//! The YAML parser gives values without positions, so this reads the block layout of the text
//! itself: top-level `services:`, one key per service, its `ports:` key and the `- ` items under
//! it. Flow style (`ports: ["80:80"]`) and entries inherited through anchors have no line of their
//! own; callers fall back to the `ports:` line, then the service's line.

use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
pub(crate) struct LineIndex {
    services: HashMap<String, usize>,
    ports_keys: HashMap<String, usize>,
    port_items: HashMap<(String, usize), usize>,
    /// Lines of other service properties the linter reports on (`scale`, `network_mode`, `deploy`).
    properties: HashMap<(String, String), usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut index = Self::default();
        let mut in_services = false;
        let mut service: Option<String> = None;
        let mut service_indent: Option<usize> = None;
        let mut property_indent: Option<usize> = None;
        let mut ports: Option<PortsBlock> = None;

        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let content = raw.trim_start_matches(' ');
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let indent = raw.len() - content.len();
            if indent == 0 {
                in_services = key_of(content) == Some("services");
                service = None;
                service_indent = None;
                ports = None;
                continue;
            }
            if !in_services {
                continue;
            }
            if service_indent.is_none_or(|si| indent <= si) {
                if let Some(k) = key_of(content) {
                    service_indent = Some(indent);
                    property_indent = None;
                    ports = None;
                    index.services.entry(k.to_owned()).or_insert(line);
                    service = Some(k.to_owned());
                }
                continue;
            }
            let Some(svc) = service.clone() else { continue };
            if let Some(block) = ports.as_mut() {
                if content.starts_with('-') && indent >= block.key_indent {
                    let item_indent = *block.item_indent.get_or_insert(indent);
                    if indent == item_indent {
                        index.port_items.insert((svc.clone(), block.count), line);
                        block.count += 1;
                        continue;
                    }
                }
                if block.item_indent.is_some_and(|ii| indent > ii) {
                    // A continuation line of a long-syntax entry (`published: ...`).
                    continue;
                }
                ports = None;
            }
            let prop_indent = *property_indent.get_or_insert(indent);
            if indent != prop_indent {
                continue;
            }
            if let Some(k) = key_of(content) {
                if k == "ports" {
                    index.ports_keys.insert(svc.clone(), line);
                    ports = Some(PortsBlock { key_indent: indent, item_indent: None, count: 0 });
                } else {
                    index.properties.insert((svc, k.to_owned()), line);
                }
            }
        }
        index
    }

    /// The best line for the `item`-th entry of `service`'s ports.
    pub(crate) fn port_item(&self, service: &str, item: usize) -> Option<usize> {
        self.port_items
            .get(&(service.to_owned(), item))
            .or_else(|| self.ports_keys.get(service))
            .or_else(|| self.services.get(service))
            .copied()
    }

    pub(crate) fn service(&self, service: &str) -> Option<usize> {
        self.services.get(service).copied()
    }

    pub(crate) fn ports_key(&self, service: &str) -> Option<usize> {
        self.ports_keys.get(service).or_else(|| self.services.get(service)).copied()
    }

    pub(crate) fn property(&self, service: &str, key: &str) -> Option<usize> {
        self.properties
            .get(&(service.to_owned(), key.to_owned()))
            .or_else(|| self.services.get(service))
            .copied()
    }
}

#[derive(Debug)]
struct PortsBlock {
    key_indent: usize,
    item_indent: Option<usize>,
    count: usize,
}

/// The key of a `key: value` or `key:` line, without quotes.
fn key_of(content: &str) -> Option<&str> {
    if content.starts_with('-') {
        return None;
    }
    let (key, rest) = if let Some(q) = content.strip_prefix('"') {
        let end = q.find('"')?;
        (&q[..end], &q[end + 1..])
    } else if let Some(q) = content.strip_prefix('\'') {
        let end = q.find('\'')?;
        (&q[..end], &q[end + 1..])
    } else {
        let colon = content.find(": ").or_else(|| content.strip_suffix(':').map(|k| k.len()))?;
        (&content[..colon], &content[colon..])
    };
    let rest = rest.trim_start_matches(' ');
    (rest.starts_with(": ") || rest == ":" || rest.starts_with(":\t") || rest.starts_with(": #"))
        .then_some(key.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
name: demo
services:
  # the front end
  web:
    image: nginx
    ports:
      - \"8080:80\"
      - target: 443
        published: 8443
    scale: 2
  'api':
    ports: [\"9000:9000\"]
  db:
    ports:
    - 5432:5432
volumes:
  data:
";

    #[test]
    fn finds_items_keys_and_services() {
        let idx = LineIndex::new(TEXT);
        assert_eq!(idx.service("web"), Some(4));
        assert_eq!(idx.port_item("web", 0), Some(7));
        assert_eq!(idx.port_item("web", 1), Some(8));
        assert_eq!(idx.property("web", "scale"), Some(10));
        // Flow style: the `ports:` line.
        assert_eq!(idx.port_item("api", 0), Some(12));
        // Items at the same indentation as their key.
        assert_eq!(idx.port_item("db", 0), Some(15));
        // `volumes: data:` is not a service.
        assert_eq!(idx.service("data"), None);
    }

    #[test]
    fn keys() {
        assert_eq!(key_of("ports:"), Some("ports"));
        assert_eq!(key_of("ports: !override"), Some("ports"));
        assert_eq!(key_of("\"web\":"), Some("web"));
        assert_eq!(key_of("- 80:80"), None);
        assert_eq!(key_of("image: a:b"), Some("image"));
        assert_eq!(key_of("plain"), None);
    }
}
