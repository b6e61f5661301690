//! The token vocabulary of the sequence tasks: padding, begin, end (the stop token), the
//! separator between prompt and answer (`=`), `+`, and the ten digits.

/// Padding.
pub const PAD: u32 = 0;
/// Begins a prompt.
pub const BOS: u32 = 1;
/// Ends a completion (the stop token).
pub const EOS: u32 = 2;
/// Ends a prompt (`=`).
pub const SEP: u32 = 3;
/// `+`.
pub const PLUS: u32 = 4;
/// The digit 0; digit d is `DIGIT0 + d`.
pub const DIGIT0: u32 = 5;
/// The number of tokens.
pub const SIZE: usize = 15;

/// The token of digit `d` (0–9).
pub fn digit(d: u32) -> u32 {
    DIGIT0 + d.min(9)
}

/// The digit a token stands for, if it is a digit.
pub fn as_digit(t: u32) -> Option<u32> {
    (DIGIT0..DIGIT0 + 10).contains(&t).then(|| t - DIGIT0)
}

/// Tokens as text: digits, `+`, `=`, `$` for the stop token; `^` begins, `_` pads.
pub fn render(tokens: &[u32]) -> String {
    tokens
        .iter()
        .map(|&t| match t {
            PAD => '_',
            BOS => '^',
            EOS => '$',
            SEP => '=',
            PLUS => '+',
            t => as_digit(t).and_then(|d| char::from_digit(d, 10)).unwrap_or('?'),
        })
        .collect()
}

/// The tokens of a decimal number, most significant digit first.
pub fn number(mut n: u64) -> Vec<u32> {
    let mut v = Vec::new();
    loop {
        v.push(digit((n % 10) as u32));
        n /= 10;
        if n == 0 {
            break;
        }
    }
    v.reverse();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_render_and_numbers_round_trip() {
        assert_eq!(render(&[BOS, digit(1), PLUS, digit(9), SEP, EOS, PAD]), "^1+9=$_");
        assert_eq!(render(&number(305)), "305");
        assert_eq!(render(&number(0)), "0");
        assert_eq!(as_digit(digit(7)), Some(7));
        assert_eq!(as_digit(PLUS), None);
        assert!((DIGIT0 + 9) < SIZE as u32);
    }
}
