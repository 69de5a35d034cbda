/* SPDX-License-Identifier: MIT */
/*
 * Street addresses between one combined block (Salesforce BillingStreet, several lines) and
 * structured parts (SAP StreetName, HouseNumber, supplement), by country convention: most of
 * Europe writes the number after the street ("Hauptstraße 12a"), the US, the UK, France,
 * Canada, Australia, Ireland and India before it ("221B Baker Street", "12 bis rue de la Paix",
 * "Plot No. 11, Anna Salai").
 *
 * How a block is read:
 *  1. Split into lines; trim; drop empty lines. A line that starts with a unit keyword and a
 *     comma ("Unit 5, 12 George St") is split at the comma.
 *  2. Lines that start with a supplement keyword (c/o, Attn, Suite, Apt, Flat, Unit, Level,
 *     Building, Floor, Postfach, PO Box, Gebäude, Etage, Piso, Scala, bte, m. ...) are
 *     supplements.
 *  3. The street line is chosen by its content, not its position: the first other line that
 *     has a house number in the country's position; failing that, the first with a number in
 *     the other position (data is not always tidy); failing that, the first other line. So in
 *     Australia "Level 5\n107 Queen Street" the second line is the street. Every remaining
 *     line is a supplement, joined with ", " in order.
 *     A number may carry a label ("Nr. 5", "Nº 5", "No. 5"), and in India the premises word
 *     before it ("Plot No. 11", "Door No. 4"): the number part of the street line, of which
 *     only the number is kept as house number (the label says only that a number follows;
 *     SAP's HouseNumber holds 10 characters).
 *  4. Text after the number on the street line ("bte 3", ", 3º B", "Apt 4B", "Suite 200")
 *     is a supplement too, placed before the supplement lines.
 * Unknown or missing country: the position is guessed from the line (digits first or last).
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "map/internal.h"

#define MAX_LINES  8
#define MAX_TOKENS 32

struct span {
    const char *s;
    size_t n;
};

static const char *const number_first_countries[] = {"US", "GB", "UK", "FR", "CA", "AU", "IE",
                                                     "NZ", "ZA", "MC", "PR", "SG", "IN", NULL};
static const char *const number_after_countries[] = {
    "DE", "AT", "CH", "NL", "BE", "IT", "ES", "PL", "LU", "LI", "DK", "SE", "NO",
    "FI", "CZ", "SK", "HU", "SI", "HR", "PT", "GR", "RO", "BG", "EE", "LV", "LT",
    "IS", "BR", "AR", "MX", "CL", "CO", "PE", "TR", "RS", "BA", "UA", "RU", NULL};

/* Words that open a supplement (compared case-insensitively, trailing '.' or ':' ignored). */
static const char *const unit_words[] = {
    "c/o",   "co",         "attn",     "attention", "z.hd",       "zhd",         "zh",
    "suite", "ste",        "apt",      "apartment", "appt",       "app",         "flat",
    "unit",  "building",   "bldg",     "floor",     "fl",         "room",        "rm",
    "dept",  "department", "postfach", "pf",        "po",         "p.o",         "pobox",
    "box",   "gebäude",    "geb",      "haus",      "hinterhaus", "etage",       "stock",
    "og",    "whg",        "wohnung",  "piso",      "planta",     "puerta",      "escalera",
    "esc",   "scala",      "interno",  "int",       "bte",        "boîte",       "bus",
    "m",     "lok",        "lokal",    "bp",        "cedex",      "appartement", "bâtiment",
    "bat",   "étage",      "#",        "lgh",       "tür",        "top",         "stiege",
    "stg",   "hs",         "kamer",    "level",     "lvl",        NULL};

static int is_unit_word(const char *s, size_t n)
{
    while (n && (s[n - 1] == '.' || s[n - 1] == ':' || s[n - 1] == ',')) {
        n--;
    }
    if (n == 0) {
        return 0;
    }
    if (s[0] == '#') {
        return 1; /* "#5" */
    }
    if (n > 11) {
        return 0; /* longer than every unit word */
    }
    unsigned char c0 = (unsigned char)tolower((unsigned char)s[0]);
    for (const char *const *w = unit_words; *w; w++) {
        if ((unsigned char)(*w)[0] == c0 && strnlen(*w, n + 1) == n && strncasecmp(*w, s, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static int ieq(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

/* The label of a house number: "No.", "Nr.", "Nº", "N°", "H.No." ("Hauptstraße Nr. 5",
 * "Plot No. 11, Anna Salai"). The label is not kept: it only says that a number follows. */
static int is_number_label(const char *s, size_t n)
{
    while (n && (s[n - 1] == '.' || s[n - 1] == ':')) {
        n--;
    }
    if (n >= 4 && s[n - 3] == '.' && strncasecmp(s + n - 2, "no", 2) == 0) {
        return 1; /* "H.No." */
    }
    return ieq(s, n, "no") || ieq(s, n, "nr") || ieq(s, n, "n\xc2\xba") || ieq(s, n, "n\xc2\xb0");
}

/* Words naming the premises before a labelled number, as India writes it ("Plot No. 11",
 * "Door No. 4", "Survey No. 12"): together they are the house number part of the street line. */
static int is_premises_word(const char *s, size_t n)
{
    static const char *const words[] = {"plot", "door", "house", "site", "survey", "shop", NULL};
    for (const char *const *w = words; *w; w++) {
        if (ieq(s, n, *w)) {
            return 1;
        }
    }
    return 0;
}

static struct span trim(const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && (isspace((unsigned char)s[n - 1]) || s[n - 1] == ',')) {
        n--;
    }
    return (struct span){s, n};
}

static int in_list(const char *const *list, const char *c, size_t n)
{
    for (const char *const *p = list; *p; p++) {
        if (n == 2 && strncasecmp(*p, c, 2) == 0) {
            return 1;
        }
    }
    return 0;
}

/* 1 = number first, 0 = number after, -1 = unknown (guess from the text). */
static int convention(const char *country, size_t cn)
{
    struct span c = trim(country ? country : "", country ? cn : 0);
    if (c.n != 2) {
        return -1;
    }
    if (in_list(number_first_countries, c.s, c.n)) {
        return 1;
    }
    if (in_list(number_after_countries, c.s, c.n)) {
        return 0;
    }
    return -1;
}

int es_addr_number_first(const char *country, size_t cn)
{
    return convention(country, cn) == 1;
}

static size_t tokenize(struct span line, struct span *tok, size_t max)
{
    size_t nt = 0, i = 0;
    while (i < line.n && nt < max) {
        while (i < line.n && isspace((unsigned char)line.s[i])) {
            i++;
        }
        size_t st = i;
        while (i < line.n && !isspace((unsigned char)line.s[i])) {
            i++;
        }
        if (i > st) {
            tok[nt++] = (struct span){line.s + st, i - st};
        }
    }
    return nt;
}

/* A house number token: 12, 12a, 12A, 12-14, 12/3, 12/3/5, 5-7b, 221B, optionally ending in
 * ',' (never in '.', which makes it an ordinal as in "Straße des 17. Juni"). */
static int is_number_token(struct span t)
{
    size_t n = t.n;
    if (n && t.s[n - 1] == ',') {
        n--;
    }
    if (n == 0 || !isdigit((unsigned char)t.s[0])) {
        return 0;
    }
    size_t i = 0;
    int letters = 0;
    while (i < n) {
        char c = t.s[i];
        if (isdigit((unsigned char)c)) {
            letters = 0;
        } else if (isalpha((unsigned char)c)) {
            if (++letters > 1) {
                return 0;
            }
        } else if (c == '-' || c == '/') {
            letters = 0;
            if (i + 1 >= n) {
                return 0;
            }
        } else {
            return 0;
        }
        i++;
    }
    return 1;
}

/* Where the number of a line that opens with a labelled number stands ("No. 5 ...": 1,
 * "Plot No. 11, ...": 2), else 0. */
static size_t leading_label(const struct span *tok, size_t nt)
{
    if (nt >= 2 && is_number_label(tok[0].s, tok[0].n) && is_number_token(tok[1])) {
        return 1;
    }
    if (nt >= 3 && is_premises_word(tok[0].s, tok[0].n) && is_number_label(tok[1].s, tok[1].n) &&
        is_number_token(tok[2])) {
        return 2;
    }
    return 0;
}

/* French/Italian number suffixes that belong to the number ("12 bis"). */
static int is_number_suffix(struct span t)
{
    size_t n = t.n;
    if (n && t.s[n - 1] == ',') {
        n--;
    }
    if (n == 1 && isalpha((unsigned char)t.s[0])) {
        return 1; /* "12 a" */
    }
    return ieq(t.s, n, "bis") || ieq(t.s, n, "ter") || ieq(t.s, n, "quater");
}

struct parsed {
    struct span street, number, rest;
    int ok;
};

static struct span join_tokens(const struct span *tok, size_t from, size_t to)
{
    if (from >= to) {
        return (struct span){"", 0};
    }
    const char *s = tok[from].s;
    const char *e = tok[to - 1].s + tok[to - 1].n;
    return trim(s, (size_t)(e - s));
}

/* Number after the street: the right-most number token whose tail is empty, a suffix letter,
 * or starts a supplement. */
static struct parsed parse_after(struct span line)
{
    struct parsed p = {{line.s, line.n}, {"", 0}, {"", 0}, 0};
    struct span tok[MAX_TOKENS];
    size_t nt = tokenize(line, tok, MAX_TOKENS);
    size_t lead = leading_label(tok, nt);
    for (size_t k = nt; k-- > 1;) {
        if (!is_number_token(tok[k]) || is_unit_word(tok[k - 1].s, tok[k - 1].n)) {
            continue; /* "Stiege 2", "bte 3": the number of a unit, not of the house */
        }
        if (k == lead) {
            continue; /* "Plot No. 11, Anna Salai": the number comes first */
        }
        /* "Hauptstraße Nr. 5": the label goes with neither part */
        size_t st_end = is_number_label(tok[k - 1].s, tok[k - 1].n) ? k - 1 : k;
        size_t end = k + 1;
        int comma = tok[k].s[tok[k].n - 1] == ',';
        if (!comma && end < nt && is_number_suffix(tok[end])) {
            comma = tok[end].s[tok[end].n - 1] == ',';
            end++;
        }
        if (end < nt && !comma && !is_unit_word(tok[end].s, tok[end].n)) {
            continue;
        }
        p.street = join_tokens(tok, 0, st_end);
        p.number = join_tokens(tok, k, end);
        p.rest = join_tokens(tok, end, nt);
        p.ok = p.street.n > 0;
        if (p.ok) {
            return p;
        }
    }
    p.street = trim(line.s, line.n);
    return p;
}

/* Number before the street: "221B Baker Street", "12 bis rue de la Paix", "12, rue X",
 * "5/12 George St"; a unit keyword or comma after the street starts a supplement. */
static struct parsed parse_first(struct span line)
{
    struct parsed p = {{line.s, line.n}, {"", 0}, {"", 0}, 0};
    struct span tok[MAX_TOKENS];
    size_t nt = tokenize(line, tok, MAX_TOKENS);
    size_t at = leading_label(tok, nt); /* "Plot No. 11, Anna Salai": the number is "11" */
    if (nt < at + 2 || !is_number_token(tok[at])) {
        p.street = trim(line.s, line.n);
        return p;
    }
    size_t st = at + 1;
    if (tok[at].s[tok[at].n - 1] != ',' && is_number_suffix(tok[st]) && nt > st + 1) {
        st++;
    }
    p.number = join_tokens(tok, at, st);
    size_t end = st;
    while (end < nt) {
        if (end > st && is_unit_word(tok[end].s, tok[end].n)) {
            break;
        }
        if (tok[end].s[tok[end].n - 1] == ',' && end + 1 < nt) {
            end++;
            break;
        }
        end++;
    }
    p.street = join_tokens(tok, st, end);
    p.rest = join_tokens(tok, end, nt);
    p.ok = p.street.n > 0;
    return p;
}

/* Parse one line; *score is 2 when the number stands where the country (or, without one, the
 * line's look) puts it, 1 when only the other position fits, 0 when the line has no number. */
static struct parsed parse_line(struct span line, int conv, int *score)
{
    if (conv == -1) {
        struct span tok[3];
        size_t nt = tokenize(line, tok, 3);
        conv = (line.n && isdigit((unsigned char)line.s[0])) || leading_label(tok, nt) ? 1 : 0;
    }
    struct parsed p = conv ? parse_first(line) : parse_after(line);
    *score = p.ok ? 2 : 0;
    if (!p.ok) {
        struct parsed q = conv ? parse_after(line) : parse_first(line);
        if (q.ok) {
            *score = 1;
            return q;
        }
    }
    return p;
}

static int starts_with_unit(struct span line)
{
    struct span tok[2];
    size_t nt = tokenize(line, tok, 2);
    if (nt == 0) {
        return 0;
    }
    if (ieq(tok[0].s, tok[0].n, "p.") && nt > 1) {
        return 1; /* "P. O. Box" */
    }
    return is_unit_word(tok[0].s, tok[0].n);
}

static void put_part(struct es_addr_parts *out, struct span s)
{
    if (!s.n) {
        return;
    }
    size_t room = sizeof out->supplement - 1 - out->supplement_n;
    if (out->supplement_n && room >= 2) {
        memcpy(out->supplement + out->supplement_n, ", ", 2);
        out->supplement_n += 2;
        room -= 2;
    }
    size_t k = s.n < room ? s.n : room;
    memcpy(out->supplement + out->supplement_n, s.s, k);
    out->supplement_n += k;
    out->supplement[out->supplement_n] = '\0';
}

void es_addr_parse(const char *block, size_t n, const char *country, size_t clen,
                   struct es_addr_parts *out)
{
    struct span lines[MAX_LINES];
    size_t nl = 0, i = 0;
    while (i <= n && nl < MAX_LINES) {
        size_t st = i;
        while (i < n && block[i] != '\n' && block[i] != '\r') {
            i++;
        }
        struct span l = trim(block + st, i - st);
        if (l.n) {
            /* "Unit 5, 12 George St": a leading unit part then the street line. */
            const char *comma = memchr(l.s, ',', l.n);
            if (comma && starts_with_unit(l) && nl + 1 < MAX_LINES) {
                struct span rest = trim(comma + 1, (size_t)(l.s + l.n - comma - 1));
                struct span head = trim(l.s, (size_t)(comma - l.s));
                if (rest.n && isdigit((unsigned char)rest.s[0])) {
                    lines[nl++] = head;
                    l = rest;
                }
            }
            lines[nl++] = l;
        }
        if (i < n && block[i] == '\r' && i + 1 < n && block[i + 1] == '\n') {
            i++;
        }
        i++;
    }
    int conv = convention(country, clen);
    int street_at = -1;
    struct parsed sp = {{"", 0}, {"", 0}, {"", 0}, 0};
    int best = 0;
    for (size_t k = 0; k < nl && best < 2; k++) {
        if (starts_with_unit(lines[k])) {
            continue;
        }
        int score;
        struct parsed p = parse_line(lines[k], conv, &score);
        if (score > best) {
            best = score;
            street_at = (int)k;
            sp = p;
        }
    }
    if (street_at < 0) {
        for (size_t k = 0; k < nl; k++) {
            if (!starts_with_unit(lines[k])) {
                street_at = (int)k;
                sp.street = lines[k];
                break;
            }
        }
    }
    out->street = sp.street.s;
    out->street_n = sp.street.n;
    out->number = sp.number.s;
    out->number_n = sp.number.n;
    out->supplement_n = 0;
    out->supplement[0] = '\0';
    put_part(out, sp.rest);
    for (size_t k = 0; k < nl; k++) {
        if ((int)k != street_at) {
            put_part(out, lines[k]);
        }
    }
}

void es_addr_split(const char *block, size_t n, const char *country, size_t clen,
                   enum es_addr_part part, struct es_buf *out)
{
    struct es_addr_parts p;
    es_addr_parse(block, n, country, clen, &p);
    switch (part) {
    case ES_ADDR_STREET:
        (void)es_buf_append(out, p.street, p.street_n);
        break;
    case ES_ADDR_HOUSE_NUMBER:
        (void)es_buf_append(out, p.number, p.number_n);
        break;
    case ES_ADDR_SUPPLEMENT:
        (void)es_buf_append(out, p.supplement, p.supplement_n);
        break;
    }
}

void es_addr_join(const char *street, size_t sn, const char *number, size_t nn,
                  const char *supplement, size_t supn, const char *country, size_t cn,
                  struct es_buf *out)
{
    struct span s = trim(street ? street : "", street ? sn : 0);
    struct span h = trim(number ? number : "", number ? nn : 0);
    struct span x = trim(supplement ? supplement : "", supplement ? supn : 0);
    int first = convention(country, cn) == 1;
    if (first) {
        (void)es_buf_append(out, h.s, h.n);
        if (h.n && s.n) {
            (void)es_buf_putc(out, ' ');
        }
        (void)es_buf_append(out, s.s, s.n);
    } else {
        (void)es_buf_append(out, s.s, s.n);
        if (h.n && s.n) {
            (void)es_buf_putc(out, ' ');
        }
        (void)es_buf_append(out, h.s, h.n);
    }
    if (x.n) {
        if (out->len) {
            (void)es_buf_putc(out, '\n');
        }
        (void)es_buf_append(out, x.s, x.n);
    }
}
