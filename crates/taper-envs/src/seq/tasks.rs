//! The sequence tasks, in order of difficulty for a small model: copy, reverse, sort, and
//! multi-digit addition. Each is tunable by length through its keyword arguments.
//!
//! | id | prompt | answer | kwargs (defaults) |
//! |---|---|---|---|
//! | `SeqCopy-v0` | `^31415=` | `31415` | `min_len` 2, `max_len` 6, `partial` false, `max_new_tokens` |
//! | `SeqReverse-v0` | `^31415=` | `51413` | as copy |
//! | `SeqSort-v0` | `^31415=` | `11345` | as copy |
//! | `SeqAddition-v0` | `^47+385=` | `432` | `digits` 3 (operands below 10^digits), `partial` false, `max_new_tokens` |
//!
//! `max_new_tokens` (the completion's token budget, stop token included) defaults to the
//! longest answer plus one; it must be at least 1.

use super::vocab::{self, digit, BOS, PLUS, SEP};
use super::SeqTask;
use crate::error::{EnvError, Result};
use crate::registry::{check_keys, parse_bool, parse_num, Kwargs};
use rand::{Rng, RngCore};

fn invalid(name: &'static str, reason: String) -> EnvError {
    EnvError::Invalid { name, reason }
}

/// The digits of a prompt between `BOS` and `SEP`; an error naming what is wrong.
fn body(prompt: &[u32]) -> Result<&[u32]> {
    match prompt {
        [b, mid @ .., s] if *b == BOS && *s == SEP => Ok(mid),
        _ => Err(invalid(
            "prompt",
            format!("`{}` does not begin with ^ and end with =", vocab::render(prompt)),
        )),
    }
}

fn budget(kw: &Kwargs, longest_answer: usize) -> Result<usize> {
    let b = parse_num::<usize>(kw, "max_new_tokens")?.unwrap_or(longest_answer + 1);
    if b == 0 {
        return Err(invalid(
            "max_new_tokens",
            "a token budget of 0 leaves no room for an answer".into(),
        ));
    }
    Ok(b)
}

/// What a copy, reverse or sort task does with the digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// The digits as they are.
    Copy,
    /// The digits in reverse order.
    Reverse,
    /// The digits in ascending order.
    Sort,
}

/// `SeqCopy-v0`, `SeqReverse-v0` and `SeqSort-v0`: a string of `min_len`–`max_len` random
/// digits, copied, reversed or sorted.
#[derive(Debug, Clone)]
pub struct Copy {
    transform: Transform,
    min_len: usize,
    max_len: usize,
    partial: bool,
    max_new_tokens: usize,
}

/// `SeqSort-v0` (a [`Copy`] task that sorts).
pub type Sort = Copy;

impl Copy {
    /// A task of strings of `min_len..=max_len` digits.
    pub fn new(transform: Transform, min_len: usize, max_len: usize, partial: bool) -> Result<Self> {
        if min_len == 0 || min_len > max_len || max_len > 64 {
            return Err(invalid(
                "max_len",
                format!("need 1 <= min_len <= max_len <= 64, got {min_len}..={max_len}"),
            ));
        }
        Ok(Copy {
            transform,
            min_len,
            max_len,
            partial,
            max_new_tokens: max_len + 1,
        })
    }

    fn from_kwargs(id: &str, transform: Transform, kw: &Kwargs) -> Result<Self> {
        check_keys(id, kw, &["min_len", "max_len", "partial", "max_new_tokens"])?;
        let partial = kw.get("partial").map(|v| parse_bool("partial", v)).transpose()?;
        let mut t = Copy::new(
            transform,
            parse_num(kw, "min_len")?.unwrap_or(2),
            parse_num(kw, "max_len")?.unwrap_or(6),
            partial.unwrap_or(false),
        )?;
        t.max_new_tokens = budget(kw, t.max_len)?;
        Ok(t)
    }
}

impl SeqTask for Copy {
    fn id(&self) -> &'static str {
        match self.transform {
            Transform::Copy => "SeqCopy-v0",
            Transform::Reverse => "SeqReverse-v0",
            Transform::Sort => "SeqSort-v0",
        }
    }
    fn generate(&self, rng: &mut dyn RngCore) -> Vec<u32> {
        let n = rng.random_range(self.min_len..=self.max_len);
        let mut p = vec![BOS];
        p.extend((0..n).map(|_| digit(rng.random_range(0..10))));
        p.push(SEP);
        p
    }
    fn answer(&self, prompt: &[u32]) -> Result<Vec<u32>> {
        let b = body(prompt)?;
        if b.is_empty() || b.iter().any(|&t| vocab::as_digit(t).is_none()) {
            return Err(invalid(
                "prompt",
                format!("`{}` is not a string of digits", vocab::render(prompt)),
            ));
        }
        let mut a = b.to_vec();
        match self.transform {
            Transform::Copy => {}
            Transform::Reverse => a.reverse(),
            Transform::Sort => a.sort_unstable(),
        }
        Ok(a)
    }
    fn partial_credit(&self) -> bool {
        self.partial
    }
    fn max_prompt_len(&self) -> usize {
        self.max_len + 2
    }
    fn max_answer_len(&self) -> usize {
        self.max_len
    }
    fn max_new_tokens(&self) -> usize {
        self.max_new_tokens
    }
}

/// `SeqAddition-v0`: `a + b` for operands uniform below `10^digits`, the sum most significant
/// digit first.
#[derive(Debug, Clone)]
pub struct Addition {
    digits: u32,
    partial: bool,
    max_new_tokens: usize,
}

impl Addition {
    /// Sums of operands with up to `digits` digits (1–9).
    pub fn new(digits: u32, partial: bool) -> Result<Self> {
        if !(1..=9).contains(&digits) {
            return Err(invalid("digits", format!("need 1 to 9 digits, got {digits}")));
        }
        Ok(Addition {
            digits,
            partial,
            max_new_tokens: digits as usize + 2,
        })
    }

    fn from_kwargs(kw: &Kwargs) -> Result<Self> {
        check_keys("SeqAddition-v0", kw, &["digits", "partial", "max_new_tokens"])?;
        let partial = kw.get("partial").map(|v| parse_bool("partial", v)).transpose()?;
        let mut t = Addition::new(parse_num(kw, "digits")?.unwrap_or(3), partial.unwrap_or(false))?;
        t.max_new_tokens = budget(kw, t.max_answer_len())?;
        Ok(t)
    }

    /// The number a run of digit tokens stands for.
    fn value(tokens: &[u32]) -> Option<u64> {
        if tokens.is_empty() || tokens.len() > 9 {
            return None;
        }
        tokens
            .iter()
            .try_fold(0u64, |acc, &t| vocab::as_digit(t).map(|d| acc * 10 + d as u64))
    }
}

impl SeqTask for Addition {
    fn id(&self) -> &'static str {
        "SeqAddition-v0"
    }
    fn generate(&self, rng: &mut dyn RngCore) -> Vec<u32> {
        let hi = 10u64.pow(self.digits);
        let (a, b) = (rng.random_range(0..hi), rng.random_range(0..hi));
        let mut p = vec![BOS];
        p.extend(vocab::number(a));
        p.push(PLUS);
        p.extend(vocab::number(b));
        p.push(SEP);
        p
    }
    fn answer(&self, prompt: &[u32]) -> Result<Vec<u32>> {
        let b = body(prompt)?;
        let bad = || {
            invalid(
                "prompt",
                format!("`{}` is not `^a+b=` with a and b numbers", vocab::render(prompt)),
            )
        };
        let plus = b.iter().position(|&t| t == PLUS).ok_or_else(bad)?;
        let x = Self::value(&b[..plus]).ok_or_else(bad)?;
        let y = Self::value(&b[plus + 1..]).ok_or_else(bad)?;
        Ok(vocab::number(x + y))
    }
    fn partial_credit(&self) -> bool {
        self.partial
    }
    fn max_prompt_len(&self) -> usize {
        2 * self.digits as usize + 3
    }
    fn max_answer_len(&self) -> usize {
        self.digits as usize + 1
    }
    fn max_new_tokens(&self) -> usize {
        self.max_new_tokens
    }
}

/// The ids of the sequence tasks.
pub const IDS: [&str; 4] = ["SeqCopy-v0", "SeqReverse-v0", "SeqSort-v0", "SeqAddition-v0"];

/// The task of a registered id with its keyword arguments.
pub fn make_task(id: &str, kw: &Kwargs) -> Result<Box<dyn SeqTask>> {
    Ok(match id {
        "SeqCopy-v0" => Box::new(Copy::from_kwargs(id, Transform::Copy, kw)?),
        "SeqReverse-v0" => Box::new(Copy::from_kwargs(id, Transform::Reverse, kw)?),
        "SeqSort-v0" => Box::new(Copy::from_kwargs(id, Transform::Sort, kw)?),
        "SeqAddition-v0" => Box::new(Addition::from_kwargs(kw)?),
        _ => {
            return Err(EnvError::UnknownEnv {
                id: id.to_string(),
                known: IDS.join(", "),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seq::{split_of, Split};
    use rand::SeedableRng;

    fn toks(s: &str) -> Vec<u32> {
        s.chars()
            .map(|c| match c {
                '^' => BOS,
                '=' => SEP,
                '+' => PLUS,
                '$' => vocab::EOS,
                d => digit(d.to_digit(10).unwrap()),
            })
            .collect()
    }

    #[test]
    fn answers_and_scores_by_hand() {
        let kw = Kwargs::new();
        let add = make_task("SeqAddition-v0", &kw).unwrap();
        assert_eq!(vocab::render(&add.answer(&toks("^47+385=")).unwrap()), "432");
        assert_eq!(vocab::render(&add.answer(&toks("^999+999=")).unwrap()), "1998");
        assert_eq!(add.score(&toks("^47+385="), &toks("432")), 1.0);
        assert_eq!(add.score(&toks("^47+385="), &toks("431")), 0.0);
        assert_eq!(add.score(&toks("^47+385="), &toks("4320")), 0.0);
        assert_eq!(add.score(&toks("47+385="), &toks("432")), 0.0, "malformed prompt");
        let rev = make_task("SeqReverse-v0", &kw).unwrap();
        assert_eq!(vocab::render(&rev.answer(&toks("^31415=")).unwrap()), "51413");
        let sort = make_task("SeqSort-v0", &kw).unwrap();
        assert_eq!(vocab::render(&sort.answer(&toks("^31415=")).unwrap()), "11345");
        let copy = make_task("SeqCopy-v0", &[("partial".to_string(), "true".to_string())].into()).unwrap();
        // 2 of 5 positions right; a longer completion is divided by its own length.
        assert_eq!(copy.score(&toks("^31415="), &toks("31000")), 0.4);
        assert_eq!(copy.score(&toks("^31415="), &toks("3141599999")), 0.5);
        assert_eq!(copy.score(&toks("^31415="), &toks("31415")), 1.0);
        assert!(copy.answer(&toks("^3+1=")).is_err());
    }

    #[test]
    fn splits_are_held_apart_and_sampling_is_seeded() {
        let task = make_task("SeqAddition-v0", &Kwargs::new()).unwrap();
        let draw = |seed, split| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            (0..200)
                .map(|_| task.sample_prompt(&mut rng, split).unwrap())
                .collect::<Vec<_>>()
        };
        let train = draw(1, Split::Train);
        let test = draw(1, Split::Test);
        assert_eq!(train, draw(1, Split::Train));
        assert!(train.iter().all(|p| split_of(p) == Split::Train));
        assert!(test.iter().all(|p| split_of(p) == Split::Test));
        assert!(test.iter().all(|p| !train.contains(p)));
        // About 1 in 8 of the prompt space is test.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let n_test = (0..8000)
            .filter(|_| split_of(&task.generate(&mut rng)) == Split::Test)
            .count();
        assert!((800..1200).contains(&n_test), "{n_test} of 8000");
        for p in &train {
            assert!(p.len() <= task.max_prompt_len());
            assert!(task.answer(p).unwrap().len() <= task.max_answer_len());
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        let kw = |k: &str, v: &str| -> Kwargs { [(k.to_string(), v.to_string())].into() };
        for (id, k, v, needle) in [
            ("SeqAddition-v0", "max_new_tokens", "0", "token budget of 0"),
            ("SeqCopy-v0", "max_new_tokens", "0", "token budget of 0"),
            ("SeqAddition-v0", "digits", "0", "1 to 9 digits"),
            ("SeqAddition-v0", "digits", "12", "1 to 9 digits"),
            ("SeqCopy-v0", "min_len", "0", "min_len"),
            ("SeqSort-v0", "max_len", "1", "min_len <= max_len"),
            ("SeqCopy-v0", "colour", "1", "no argument `colour`"),
            ("SeqCopy-v0", "partial", "maybe", "true or false"),
        ] {
            let e = make_task(id, &kw(k, v)).unwrap_err().to_string();
            assert!(e.contains(needle), "{id} {k}={v}: {e}");
        }
        // A prompt space too small for a test set.
        let tiny = make_task(
            "SeqCopy-v0",
            &[("min_len".into(), "1".into()), ("max_len".into(), "1".into())].into(),
        )
        .unwrap();
        let tests = (0..10)
            .filter(|&d| split_of(&[BOS, digit(d), SEP]) == Split::Test)
            .count();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let r = tiny.sample_prompt(&mut rng, Split::Test);
        assert_eq!(r.is_ok(), tests > 0, "{tests} test prompts among the 10");
        if let Err(e) = r {
            assert!(e.to_string().contains("no Test prompts"), "{e}");
        }
    }
}
