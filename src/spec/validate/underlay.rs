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
                .related(link.a.span, "the same site")
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
                .related(*first, "first linked here")
                .help("keep one `link` between two sites: its impairment applies to both directions");
            continue;
        }
        seen.insert(key, link.span);
    }
}
