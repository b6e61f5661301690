//! `taper train --seeds` and `taper plot`.

use crate::common::*;

/// `--seeds` trains sibling runs that `taper plot` groups into one curve; the PNG is written.
#[test]
fn seeds_then_plot() {
    let d = tempfile::tempdir().unwrap();
    let base = d.path().join("multi");
    train_into(&["--seeds", "0..3", "--total-steps", "2048"], &base, &[]);
    for s in 0..3 {
        assert!(base.join(format!("s{s}/checkpoint/state.json")).exists());
    }
    // Each seed's run equals the same seed trained alone.
    let alone = d.path().join("alone");
    train_into(&["--seed", "1", "--total-steps", "2048"], &alone, &[]);
    assert_eq!(metrics_without_timing(&base.join("s1")), metrics_without_timing(&alone));
    let png = d.path().join("curve.png");
    let dirs: Vec<String> = (0..3)
        .map(|s| base.join(format!("s{s}")).to_string_lossy().to_string())
        .collect();
    let mut args = vec!["plot"];
    args.extend(dirs.iter().map(|s| s.as_str()));
    args.extend(["--out", png.to_str().unwrap(), "--smooth", "3"]);
    let o = taper(&args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    let svg = d.path().join("curve.svg");
    let o = taper(
        &[
            "plot",
            &dirs[0],
            "--out",
            svg.to_str().unwrap(),
            "--metric",
            "value_loss",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    assert_clean_error(&taper(&["train", "--seeds", "3..3"], &[]), "--seeds");
    assert_clean_error(&taper(&["train", "--seeds", "1,x"], &[]), "--seeds");
}

#[test]
fn plot_errors_name_the_problem() {
    let d = tempfile::tempdir().unwrap();
    let empty = d.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert_clean_error(&taper(&["plot", empty.to_str().unwrap()], &[]), "has no metrics.jsonl");
    let a = d.path().join("a");
    train_into(&["--total-steps", "1024"], &a, &[]);
    let o = taper(
        &[
            "plot",
            a.to_str().unwrap(),
            "--metric",
            "nope",
            "--out",
            d.path().join("x.png").to_str().unwrap(),
        ],
        &[],
    );
    assert_clean_error(&o, "--metric: unknown column `nope`");
    assert!(stderr(&o).contains("available:") && stderr(&o).contains("policy_loss"));
    assert_clean_error(
        &taper(&["plot", a.to_str().unwrap(), "--out", "x.jpg"], &[]),
        ".png or .svg",
    );
}
