//! The deterministic data set shared by the four mock subgraphs.
//!
//! It is built once per process (lazily, on first use) and never mutated, so every subgraph
//! answers from the same `&'static` data without cloning it per request. The shape mirrors
//! the standard federation benchmark: [`USER_COUNT`] users (ids `"1"`..`"10"`),
//! [`PRODUCT_COUNT`] products (upcs `"1"`..`"10"`) and [`REVIEW_COUNT`] reviews (ids
//! `"1"`..`"22"`) with long pseudo-random (but fixed) bodies. Every user wrote at least two
//! reviews and every product has at least two reviews, so the benchmark query fans out the way
//! the public benchmark does.

use std::sync::LazyLock;

/// Number of users (ids `"1"`..=`"10"`).
pub const USER_COUNT: usize = 10;
/// Number of products (upcs `"1"`..=`"10"`).
pub const PRODUCT_COUNT: usize = 10;
/// Number of reviews (ids `"1"`..=`"22"`).
pub const REVIEW_COUNT: usize = 22;

/// A user, as known to the `accounts` subgraph (and partially to `reviews`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Key, `"1"`..`"10"`.
    pub id: String,
    /// Full name.
    pub name: String,
    /// Handle; `reviews` provides it on `Review.author`.
    pub username: String,
    /// Some integer birthday (seconds since the epoch).
    pub birthday: i32,
    /// Indices into [`Data::reviews`] of the reviews written by this user, ascending.
    pub reviews: Vec<usize>,
}

/// A product, as known to the `products` subgraph (and partially to `inventory`, `reviews`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Key, `"1"`..`"10"`.
    pub upc: String,
    /// Display name.
    pub name: String,
    /// Price (some above 1000, which makes shipping free).
    pub price: i32,
    /// Weight.
    pub weight: i32,
    /// Owned by `inventory`.
    pub in_stock: bool,
    /// Indices into [`Data::reviews`] of the reviews of this product, ascending.
    pub reviews: Vec<usize>,
}

/// A review, owned by the `reviews` subgraph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// Key, `"1"`..`"22"`.
    pub id: String,
    /// Long deterministic text (several hundred ASCII characters, nothing to escape in JSON).
    pub body: String,
    /// Index into [`Data::users`].
    pub author: usize,
    /// Index into [`Data::products`].
    pub product: usize,
}

/// All the data. Obtain it with [`data()`].
#[derive(Debug)]
pub struct Data {
    /// Users in id order.
    pub users: Vec<User>,
    /// Products in upc order.
    pub products: Vec<Product>,
    /// Reviews in id order.
    pub reviews: Vec<Review>,
}

impl Data {
    /// The user with this id, if any.
    pub fn user(&self, id: &str) -> Option<&User> {
        lookup(&self.users, id, |u| &u.id)
    }

    /// The product with this upc, if any.
    pub fn product(&self, upc: &str) -> Option<&Product> {
        lookup(&self.products, upc, |p| &p.upc)
    }

    /// The review with this id, if any.
    pub fn review(&self, id: &str) -> Option<&Review> {
        lookup(&self.reviews, id, |r| &r.id)
    }

    /// `shippingEstimate` as computed by `inventory` from the `price` and `weight` it is given:
    /// free (0) above a price of 1000, otherwise half the weight.
    pub fn shipping_estimate(price: i32, weight: i32) -> i32 {
        if price > 1000 { 0 } else { weight / 2 }
    }
}

/// Ids are `"1"`..`"N"`, so the index is `id - 1`; the final string comparison rejects
/// spellings such as `"01"`.
fn lookup<'a, T>(items: &'a [T], key: &str, key_of: impl Fn(&T) -> &String) -> Option<&'a T> {
    let n: usize = key.parse().ok()?;
    let item = items.get(n.checked_sub(1)?)?;
    (key_of(item) == key).then_some(item)
}

/// The shared data set, built on first use.
pub fn data() -> &'static Data {
    static DATA: LazyLock<Data> = LazyLock::new(build);
    &DATA
}

const USERS: [(&str, &str); USER_COUNT] = [
    ("Ada Lovelace", "ada"),
    ("Alan Turing", "alan"),
    ("Grace Hopper", "grace"),
    ("Edsger Dijkstra", "edsger"),
    ("Barbara Liskov", "barbara"),
    ("Donald Knuth", "donald"),
    ("Margaret Hamilton", "margaret"),
    ("John McCarthy", "john"),
    ("Frances Allen", "frances"),
    ("Ken Thompson", "ken"),
];

/// (name, price, weight)
const PRODUCTS: [(&str, i32, i32); PRODUCT_COUNT] = [
    ("Table", 899, 100),
    ("Couch", 1299, 1000),
    ("Chair", 54, 50),
    ("Lamp", 35, 5),
    ("Desk", 450, 80),
    ("Bookshelf", 120, 60),
    ("Rug", 300, 15),
    ("Mirror", 75, 10),
    ("Bed", 1599, 2000),
    ("Armchair", 650, 40),
];

const WORDS: [&str; 48] = [
    "sturdy",
    "comfortable",
    "delivery",
    "assembly",
    "instructions",
    "quality",
    "finish",
    "wood",
    "fabric",
    "color",
    "price",
    "value",
    "living",
    "room",
    "family",
    "weekend",
    "screws",
    "package",
    "surprisingly",
    "heavy",
    "light",
    "elegant",
    "simple",
    "design",
    "scratches",
    "warranty",
    "customer",
    "service",
    "replacement",
    "recommend",
    "friends",
    "months",
    "daily",
    "use",
    "still",
    "looks",
    "new",
    "would",
    "buy",
    "again",
    "slightly",
    "smaller",
    "than",
    "expected",
    "but",
    "perfect",
    "overall",
    "happy",
];

fn build() -> Data {
    let mut users: Vec<User> = USERS
        .iter()
        .enumerate()
        .map(|(i, (name, username))| User {
            id: (i + 1).to_string(),
            name: (*name).to_owned(),
            username: (*username).to_owned(),
            birthday: 86_400 * (3_650 + 1_187 * i as i32),
            reviews: Vec::new(),
        })
        .collect();
    let mut products: Vec<Product> = PRODUCTS
        .iter()
        .enumerate()
        .map(|(i, (name, price, weight))| Product {
            upc: (i + 1).to_string(),
            name: (*name).to_owned(),
            price: *price,
            weight: *weight,
            in_stock: i % 3 != 2,
            reviews: Vec::new(),
        })
        .collect();
    let reviews: Vec<Review> = (0..REVIEW_COUNT)
        .map(|i| {
            // Users 1 and 2 get three reviews, the others two; likewise products 3 and 10.
            let author = i % USER_COUNT;
            let product = (i * 7 + i / PRODUCT_COUNT) % PRODUCT_COUNT;
            Review {
                id: (i + 1).to_string(),
                body: review_body(i, &users[author].username, PRODUCTS[product].0),
                author,
                product,
            }
        })
        .collect();
    for (i, review) in reviews.iter().enumerate() {
        users[review.author].reviews.push(i);
        products[review.product].reviews.push(i);
    }
    Data {
        users,
        products,
        reviews,
    }
}

/// Deterministic text of 260..360 characters built from [`WORDS`] with a tiny LCG.
fn review_body(i: usize, username: &str, product: &str) -> String {
    let target = 260 + (i * 53) % 80;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ (i as u64).wrapping_mul(0x0100_0000_01B3);
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    let mut body = format!("Review {} of the {product} by {username}.", i + 1);
    let mut words_in_sentence = 0;
    let mut sentence_len = 6 + next() % 9;
    while body.len() < target {
        let word = WORDS[next() % WORDS.len()];
        body.push(' ');
        if words_in_sentence == 0 {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                body.push(first.to_ascii_uppercase());
                body.push_str(chars.as_str());
            }
        } else {
            body.push_str(word);
        }
        words_in_sentence += 1;
        if words_in_sentence == sentence_len {
            body.push('.');
            words_in_sentence = 0;
            sentence_len = 6 + next() % 9;
        }
    }
    if words_in_sentence != 0 {
        body.push('.');
    }
    body
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let d = data();
        assert_eq!(d.users.len(), USER_COUNT);
        assert_eq!(d.products.len(), PRODUCT_COUNT);
        assert_eq!(d.reviews.len(), REVIEW_COUNT);
        assert!(d.users.iter().all(|u| u.reviews.len() >= 2));
        assert!(d.products.iter().all(|p| p.reviews.len() >= 2));
        assert!(d.reviews.iter().all(|r| (260..360).contains(&r.body.len())));
        assert!(
            d.reviews
                .iter()
                .all(|r| r.body.chars().all(|c| c.is_ascii_graphic() || c == ' '))
        );
        // A user never reviews the same product twice.
        for u in &d.users {
            let mut ps: Vec<usize> = u.reviews.iter().map(|&r| d.reviews[r].product).collect();
            ps.sort_unstable();
            ps.dedup();
            assert_eq!(ps.len(), u.reviews.len());
        }
    }

    #[test]
    fn lookups() {
        let d = data();
        assert_eq!(d.user("3").map(|u| u.username.as_str()), Some("grace"));
        assert!(d.user("0").is_none());
        assert!(d.user("11").is_none());
        assert!(d.user("01").is_none());
        assert!(d.user("x").is_none());
        assert_eq!(d.product("10").map(|p| p.name.as_str()), Some("Armchair"));
        assert_eq!(d.review("22").map(|r| r.id.as_str()), Some("22"));
        assert!(d.review("23").is_none());
        assert_eq!(Data::shipping_estimate(1299, 1000), 0);
        assert_eq!(Data::shipping_estimate(899, 100), 50);
    }

    #[test]
    fn deterministic() {
        assert_eq!(build().reviews, data().reviews);
    }
}
