//! `kiln build --verify`: rebuild everything from scratch in a temporary state root (no
//! cache, no unpacked layers, a fresh stat cache) and compare the digests with the build
//! just made, layer by layer; on a difference, name the first layer and file that differ.

use std::collections::BTreeMap;

use super::output::line;
use crate::build::{self, BuildOptions, BuildOutcome, BuiltImage, HostInputs, StatCache};
use crate::plan::BuildPlan;
use crate::spec::Loaded;
use crate::store::{Descriptor, Store};

pub(super) fn run(
    main_store: &Store,
    loaded: &Loaded,
    plan: &BuildPlan,
    first: &BuildOutcome,
    options: &BuildOptions,
) -> Result<u8, crate::Error> {
    let temp = tempfile::Builder::new()
        .prefix("kiln-verify-")
        .tempdir()
        .map_err(|source| crate::Error::Failed {
            message: format!("cannot create a temporary state root: {source}"),
            help: None,
        })?;
    let store = Store::open(temp.path().join("store"))?;
    let stat_cache = StatCache::default();
    let inputs = HostInputs::new(&store, &stat_cache);
    let mut plan = plan.clone();
    if let Err(err) = plan.compute_keys(&inputs) {
        super::build::report_error(&err, &loaded.sources);
        return Ok(1);
    }
    let options = BuildOptions {
        no_cache: true,
        state_root: temp.path().to_path_buf(),
        ..options.clone()
    };
    eprintln!(
        "verify: rebuilding from scratch in {}",
        temp.path().display()
    );
    let second = match build::build(&store, &plan, &inputs, &options, &|_| {}) {
        Ok(outcome) => outcome,
        Err(errors) => {
            for err in &errors {
                super::build::report_error(err, &loaded.sources);
            }
            return Ok(1);
        }
    };
    let mut differences = 0;
    for image in &first.images {
        let Some(again) = second.images.iter().find(|i| i.name == image.name) else {
            continue;
        };
        if image.digest == again.digest {
            line(format!(
                "verify: {}  {}  identical",
                image.name, image.digest
            ))?;
            continue;
        }
        differences += 1;
        eprintln!(
            "verify: {} differs: {} then {}",
            image.name, image.digest, again.digest
        );
        explain_difference(image, main_store, again, &store);
    }
    Ok(if differences == 0 { 0 } else { 1 })
}

fn explain_difference(
    first: &BuiltImage,
    first_store: &Store,
    second: &BuiltImage,
    second_store: &Store,
) {
    let layers = first.layers.iter().zip(&first.diff_ids);
    let again = second.layers.iter().zip(&second.diff_ids);
    for (index, ((layer_a, a), (layer_b, b))) in layers.zip(again).enumerate() {
        if a == b {
            continue;
        }
        eprintln!("  layer {} differs: {a} then {b}", index + 1);
        match (
            listing(first_store, layer_a),
            listing(second_store, layer_b),
        ) {
            (Ok(before), Ok(after)) => {
                let paths: std::collections::BTreeSet<&String> =
                    before.keys().chain(after.keys()).collect();
                if let Some(path) = paths.into_iter().find(|p| before.get(*p) != after.get(*p)) {
                    eprintln!("  first differing file: /{path}");
                    eprintln!(
                        "    first:  {}",
                        before.get(path).map_or("absent", String::as_str)
                    );
                    eprintln!(
                        "    second: {}",
                        after.get(path).map_or("absent", String::as_str)
                    );
                } else {
                    eprintln!("  same files, different tar bytes (order or padding)");
                }
            }
            (Err(err), _) | (_, Err(err)) => eprintln!("  cannot list the layers: {err}"),
        }
        return;
    }
    if first.diff_ids.len() != second.diff_ids.len() {
        eprintln!(
            "  layer count differs: {} then {}",
            first.diff_ids.len(),
            second.diff_ids.len()
        );
    } else {
        eprintln!("  every layer is identical: the image config differs");
    }
}

/// Path → (header summary, content hash) of every entry of a layer.
fn listing(store: &Store, layer: &Descriptor) -> std::io::Result<BTreeMap<String, String>> {
    let blob = store
        .open_blob(&layer.digest)
        .map_err(std::io::Error::other)?;
    let tar = crate::layer::decompressing_reader(std::io::BufReader::new(blob))
        .map_err(std::io::Error::other)?;
    let mut archive = tar::Archive::new(tar);
    let mut out = BTreeMap::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let header = entry.header();
        let summary = format!(
            "type {:?} mode {:o} uid {} gid {} mtime {} link {:?}",
            header.entry_type(),
            header.mode().unwrap_or(0),
            header.uid().unwrap_or(0),
            header.gid().unwrap_or(0),
            header.mtime().unwrap_or(0),
            header.link_name().ok().flatten().map(|l| l.into_owned())
        );
        let mut hasher = blake3::Hasher::new();
        std::io::copy(&mut entry, &mut hasher)?;
        out.insert(
            path,
            format!("{summary} content {}", hasher.finalize().to_hex()),
        );
    }
    Ok(out)
}
