//! The underlay's impaired links: each joins two declared sites (a host's `site=`, else the
//! host itself), two different ones, once; and a project with an `underlay` has hosts.

use std::collections::BTreeMap;

use crate::spec::diag::{Code, Diagnostics, did_you_mean};
use crate::spec::model::Project;
use crate::spec::source::Span;

pub(super) fn check(project: &Project, diags: &mut Diagnostics) {
    if project.underlay.is_empty() {
        return;
    }
    if project.hosts.is_empty() {
        for link in &project.underlay {
            diags
                .error(
                    Code::UnderlayWithoutHosts,
                    link.span,
                    "an underlay link in a project without hosts",
                )
                .label("no underlay: everything runs on this machine")
                .help("declare the hosts (`host \"m1\" address=\"192.0.2.1\" site=\"east\"`), or remove `underlay`");
        }
        return;
    }
    let mut sites: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for host in &project.hosts {
        sites
            .entry(host.site())
            .or_default()
            .push(host.name.value.as_str());
    }
    let mut seen: BTreeMap<(&str, &str), Span> = BTreeMap::new();
    for link in &project.underlay {
        let mut known = true;
        for end in [&link.a, &link.b] {
            if sites.contains_key(end.value.as_str()) {
                continue;
            }
            known = false;
            let standing = project
                .hosts
                .iter()
                .find(|h| h.name.value == end.value)
                .map(|h| {
                    format!(
                        "host `{}` stands in site `{}`: link that site",
                        end.value,
                        h.site()
                    )
                });
            let help = standing
                .or_else(|| did_you_mean(&end.value, sites.keys().copied()))
                .unwrap_or_else(|| {
                    format!(
                        "a site is a host's `site=`, or a host without one; the sites are {}",
                        sites
                            .keys()
                            .map(|s| format!("`{s}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
            diags
                .error(
                    Code::UnknownSite,
                    end.span,
                    format!("unknown site `{}`", end.value),
                )
                .label("no host stands in it")
                .help(help);
        }
        if !known {
            continue;
        }
        if link.a.value == link.b.value {
            diags
                .error(
                    Code::SiteLinkedToItself,
                    link.b.span,
                    format!("the link joins site `{}` to itself", link.a.value),
                )
                .label("the same site again")
                .related(link.a.span, "one end")
                .help("the hosts of one site share an unimpaired wire: link two different sites");
            continue;
        }
        let key = if link.a.value <= link.b.value {
            (link.a.value.as_str(), link.b.value.as_str())
        } else {
            (link.b.value.as_str(), link.a.value.as_str())
        };
        if let Some(first) = seen.get(&key) {
            diags
                .error(
                    Code::DuplicateUnderlayLink,
                    link.span,
                    format!("sites `{}` and `{}` are linked twice", key.0, key.1),
                )
                .label("linked again")
                .related(*first, "first linked here")
                .help(
                    "keep one `link` between two sites: its impairment applies to both directions",
                );
            continue;
        }
        seen.insert(key, link.span);
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::{Code, Options, RealFs, load_source};

    const HOSTS: &str = r#"
        host "e1" address="192.0.2.1" site="east"
        host "e2" address="192.0.2.2" site="east"
        host "w1" address="192.0.2.3" site="west"
        host "solo" address="192.0.2.4"
    "#;

    /// The codes, messages and helps of `text`'s diagnostics.
    fn check(text: &str) -> Vec<(Code, String, String)> {
        let loaded = load_source("kiln.kdl", None, text, &RealFs, &Options::default());
        loaded
            .diagnostics
            .iter()
            .map(|d| {
                (
                    d.code,
                    d.message.clone(),
                    d.help.clone().unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn sites_and_hosts_without_one_can_be_linked() {
        let text = format!(
            r#"{HOSTS}
            underlay {{
                link "east" "west" {{ impair delay="40ms"; }}
                link "solo" "east" {{ impair loss="1%"; }}
            }}"#
        );
        assert_eq!(check(&text), []);
    }

    #[test]
    fn an_unknown_site_is_reported_with_the_site_of_a_host_of_that_name() {
        let text = format!(
            r#"{HOSTS}
            underlay {{
                link "e1" "west" {{ impair delay="40ms"; }}
                link "esat" "west" {{ impair delay="40ms"; }}
            }}"#
        );
        let found = check(&text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0, Code::UnknownSite);
        assert_eq!(found[0].1, "unknown site `e1`");
        assert_eq!(
            found[0].2,
            "host `e1` stands in site `east`: link that site"
        );
        assert_eq!(found[1].2, "did you mean `east`?");
    }

    #[test]
    fn a_site_linked_to_itself_or_twice_is_reported() {
        let text = format!(
            r#"{HOSTS}
            underlay {{
                link "east" "east" {{ impair delay="40ms"; }}
                link "east" "west" {{ impair delay="40ms"; }}
                link "west" "east" {{ impair delay="10ms"; }}
            }}"#
        );
        let codes: Vec<Code> = check(&text).into_iter().map(|d| d.0).collect();
        assert_eq!(
            codes,
            [Code::SiteLinkedToItself, Code::DuplicateUnderlayLink]
        );
    }

    #[test]
    fn an_underlay_needs_hosts_and_each_link_an_impairment() {
        let found = check(r#"underlay { link "east" "west" { impair delay="40ms"; }; }"#);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, Code::UnderlayWithoutHosts);
        let text = format!(r#"{HOSTS} underlay {{ link "east" "west"; }}"#);
        let found = check(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, Code::MissingProperty);
        assert_eq!(found[0].1, "an underlay `link` without `impair`");
    }
}
