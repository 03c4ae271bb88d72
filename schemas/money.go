package schemas

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/currency"
)

// currencyUnit is an ISO 4217 currency with the number of minor-unit digits
// its prices carry (2 for EUR, 0 for KRW, 3 for BHD).
type currencyUnit struct {
	code  string
	scale int
}

// lookupCurrency resolves a 3-letter ISO 4217 code in any letter case. XXX
// ("no currency") is not a price currency.
func lookupCurrency(code string) (currencyUnit, bool) {
	if len(code) != 3 {
		return currencyUnit{}, false
	}
	u, err := currency.ParseISO(code)
	if err != nil || u == (currency.Unit{}) {
		return currencyUnit{}, false
	}
	scale, _ := currency.Standard.Rounding(u)
	return currencyUnit{code: u.String(), scale: scale}, true
}

// CurrencyCode returns code as the ISO 4217 code it names, in upper case
// ("usd" is USD); false for anything else, XXX included.
func CurrencyCode(code string) (string, bool) {
	u, ok := lookupCurrency(strings.TrimSpace(code))
	return u.code, ok
}

// currencyFromText reads a currency column: an ISO code, or a lone symbol
// such as "€" or "원".
func currencyFromText(s string) (currencyUnit, bool) {
	if u, ok := lookupCurrency(s); ok {
		return u, true
	}
	if r, size := utf8.DecodeRuneInString(s); size == len(s) {
		if code, ok := symbolCurrency(r); ok {
			return lookupCurrency(code)
		}
	}
	return currencyUnit{}, false
}

// symbolCurrency returns the currency a symbol stands for when nothing else
// in the value or the mapping says otherwise.
func symbolCurrency(r rune) (string, bool) {
	switch r {
	case '₩', '￦', '원':
		return "KRW", true
	case '$':
		return "USD", true
	case '€':
		return "EUR", true
	case '£', '￡':
		return "GBP", true
	case '¥', '￥', '円':
		return "JPY", true
	}
	return "", false
}

// symbolFits reports whether symbol r is written for prices in code, so
// "$15" in a CAD feed stays CAD and "¥500 CNY" is not a contradiction.
func symbolFits(r rune, code string) bool {
	switch r {
	case '$':
		switch code {
		case "USD", "CAD", "AUD", "NZD", "HKD", "SGD", "MXN", "TWD":
			return true
		}
		return false
	case '¥', '￥':
		return code == "JPY" || code == "CNY"
	}
	primary, _ := symbolCurrency(r)
	return primary == code
}

// dollarPrefix resolves the letters written before "$" ("US$15", "C$20").
func dollarPrefix(letters string) (string, bool) {
	switch strings.ToUpper(letters) {
	case "US":
		return "USD", true
	case "C", "CA":
		return "CAD", true
	case "A", "AU":
		return "AUD", true
	case "NZ":
		return "NZD", true
	case "HK":
		return "HKD", true
	case "S", "SG":
		return "SGD", true
	}
	return "", false
}

var errEmptyMoney = errors.New("empty")

// ParseMoney reads a price as partners write it ("12,900원", "1.299,00 EUR",
// "$15.99", "USD 15") into integer minor units of an ISO 4217 currency.
// defaultCurrency applies when the value names none; a currency symbol or
// code in the value wins over it. Error texts read as statements about the
// value, so a caller can prefix the field name.
//
// Separators: when both '.' and ',' appear the last one is the decimal
// separator; one kind appearing several times groups thousands; a single
// separator followed by exactly three digits groups thousands when the
// currency has 0 or 2 decimals and digits other than 0 precede it, else it
// is the decimal separator. Spaces,
// no-break spaces and apostrophes between digits group thousands.
// Superfluous decimal zeros ("12900.00" KRW) are exact and accepted.
func ParseMoney(s, defaultCurrency string) (amount int64, code string, err error) {
	var fallback currencyUnit
	if d := strings.TrimSpace(defaultCurrency); d != "" {
		u, ok := lookupCurrency(d)
		if !ok {
			return 0, "", fmt.Errorf("default currency %q is not an ISO 4217 code", d)
		}
		fallback = u
	}
	amount, unit, _, err := parseMoney(s, fallback)
	if err != nil {
		return 0, "", err
	}
	return amount, unit.code, nil
}

// parseMoney is ParseMoney with the fallback currency already looked up. named
// reports whether the value itself named the currency.
func parseMoney(s string, fallback currencyUnit) (amount int64, unit currencyUnit, named bool, err error) {
	s = clean(s)
	if s == "" {
		return 0, unit, false, errEmptyMoney
	}
	var (
		number    string
		numbers   int
		negative  bool
		code      string // an ISO code written in the value
		codeClash string // a second, different code
		symbol    rune
		symClash  rune
	)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isDigit(c):
			j := numberEnd(s, i)
			number, numbers, i = s[i:j], numbers+1, j
		case c == ' ' || c == '\t':
			i++
		case c == '-':
			negative = true
			i++
		case isLetter(c):
			j := i
			for j < len(s) && isLetter(s[j]) {
				j++
			}
			word := s[i:j]
			i = j
			if i < len(s) && s[i] == '$' {
				if d, ok := dollarPrefix(word); ok {
					word = d
					i++
				}
			}
			if len(word) != 3 {
				return 0, unit, false, fmt.Errorf("%q is not a number", s)
			}
			switch {
			case code == "":
				code = word
			case !strings.EqualFold(code, word):
				codeClash = word
			}
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			i += size
			switch {
			case unicode.IsSpace(r):
			case r == '−': // U+2212 MINUS SIGN
				negative = true
			default:
				if _, ok := symbolCurrency(r); !ok {
					return 0, unit, false, fmt.Errorf("%q is not a number", s)
				}
				switch {
				case symbol == 0:
					symbol = r
				case !sameSymbol(symbol, r):
					symClash = r
				}
			}
		}
	}
	if numbers != 1 {
		return 0, unit, false, fmt.Errorf("%q is not a number", s)
	}
	if negative {
		return 0, unit, false, fmt.Errorf("%q is negative", s)
	}

	switch {
	case code != "":
		u, ok := fallback, strings.EqualFold(code, fallback.code)
		if !ok {
			u, ok = lookupCurrency(code)
		}
		if !ok {
			return 0, unit, false, fmt.Errorf("%q names currency %q, which is not an ISO 4217 code", s, strings.ToUpper(code))
		}
		if codeClash != "" {
			return 0, unit, false, fmt.Errorf("%q names both %s and %s", s, u.code, strings.ToUpper(codeClash))
		}
		if symClash != 0 {
			return 0, unit, false, fmt.Errorf("%q names currency symbols %c and %c", s, symbol, symClash)
		}
		if symbol != 0 && !symbolFits(symbol, u.code) {
			primary, _ := symbolCurrency(symbol)
			return 0, unit, false, fmt.Errorf("%q names both %s and %s", s, primary, u.code)
		}
		unit, named = u, true
	case symbol != 0:
		if symClash != 0 {
			return 0, unit, false, fmt.Errorf("%q names currency symbols %c and %c", s, symbol, symClash)
		}
		if fallback.code != "" && symbolFits(symbol, fallback.code) {
			unit = fallback
		} else {
			primary, _ := symbolCurrency(symbol)
			unit, _ = lookupCurrency(primary)
		}
		named = true
	default:
		if fallback.code == "" {
			return 0, unit, false, fmt.Errorf("%q names no currency and there is no default currency", s)
		}
		unit = fallback
	}

	amount, decimals, problem := parseAmount(number, unit.scale)
	switch problem {
	case amountOK:
		return amount, unit, named, nil
	case amountTooPrecise:
		return 0, unit, named, fmt.Errorf("%q has %s but %s has %d", s, plural(decimals, "decimal place"), unit.code, unit.scale)
	case amountTooLarge:
		return 0, unit, named, fmt.Errorf("%q is too large", s)
	}
	return 0, unit, named, fmt.Errorf("%q is not a number", s)
}

// sameSymbol treats the symbols of one currency as one ("¥500円").
func sameSymbol(a, b rune) bool {
	ca, _ := symbolCurrency(a)
	cb, _ := symbolCurrency(b)
	return ca == cb
}

// numberEnd returns where the number starting at s[i] ends: digits, '.' and
// ',' and, between digits, spaces, no-break spaces and apostrophes.
func numberEnd(s string, i int) int {
	for i < len(s) {
		c := s[i]
		switch {
		case isDigit(c) || c == '.' || c == ',':
			i++
			continue
		case c == ' ' || c == '\'':
			if i+1 < len(s) && isDigit(s[i+1]) {
				i++
				continue
			}
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s[i:])
			if isGroupSpace(r) && i+size < len(s) && isDigit(s[i+size]) {
				i += size
				continue
			}
		}
		break
	}
	return i
}

// isGroupSpace reports the non-ASCII runes that group thousands.
func isGroupSpace(r rune) bool {
	return r == '\u00a0' || r == '\u202f' || r == '\u2009' || r == '\u2019'
}

type amountProblem uint8

const (
	amountOK amountProblem = iota
	amountNotANumber
	amountTooPrecise
	amountTooLarge
)

// parseAmount turns a number as numberEnd delimits it into minor units of
// a currency with scale decimals. decimals is how many the number wrote.
func parseAmount(num string, scale int) (amount int64, decimals int, problem amountProblem) {
	dots, commas, lastDot, lastComma := 0, 0, -1, -1
	for i := 0; i < len(num); i++ {
		switch num[i] {
		case '.':
			dots, lastDot = dots+1, i
		case ',':
			commas, lastComma = commas+1, i
		}
	}
	dec := -1 // byte offset of the decimal separator
	var thousands byte
	switch {
	case dots > 0 && commas > 0:
		if lastDot > lastComma {
			dec, thousands = lastDot, ','
			if dots > 1 {
				return 0, 0, amountNotANumber
			}
		} else {
			dec, thousands = lastComma, '.'
			if commas > 1 {
				return 0, 0, amountNotANumber
			}
		}
	case dots+commas == 1:
		pos := max(lastDot, lastComma)
		// "0.999" has no thousands to group, so its separator is a decimal one.
		grouped := strings.TrimLeft(num[:pos], "0") != ""
		if tail := num[pos+1:]; grouped && len(tail) == 3 && allDigits(tail) && (scale == 0 || scale == 2) {
			thousands = num[pos]
		} else {
			dec = pos
		}
	case dots > 1:
		thousands = '.'
	case commas > 1:
		thousands = ','
	}

	whole, frac := num, ""
	if dec >= 0 {
		whole, frac = num[:dec], num[dec+1:]
	}
	var ok bool
	group, groups := 0, 0 // digits in the current group, groups closed so far
	for i := 0; i < len(whole); {
		c := whole[i]
		if isDigit(c) {
			if amount, ok = appendDigit(amount, c); !ok {
				return 0, 0, amountTooLarge
			}
			group++
			i++
			continue
		}
		size := 1
		switch {
		case c == '.' || c == ',':
			if c != thousands {
				return 0, 0, amountNotANumber
			}
		case c >= utf8.RuneSelf:
			_, size = utf8.DecodeRuneInString(whole[i:])
		}
		// The first group has 1-3 digits, later ones 3 (or 2, for lakh/crore
		// grouping as in "1,00,000"); the last one always 3.
		if groups == 0 && (group < 1 || group > 3) || groups > 0 && group != 3 && group != 2 {
			return 0, 0, amountNotANumber
		}
		groups++
		group = 0
		i += size
	}
	if groups > 0 && group != 3 {
		return 0, 0, amountNotANumber
	}

	for i := 0; i < len(frac); i++ {
		c := frac[i]
		if !isDigit(c) {
			return 0, 0, amountNotANumber
		}
		if i < scale {
			if amount, ok = appendDigit(amount, c); !ok {
				return 0, 0, amountTooLarge
			}
		} else if c != '0' {
			return 0, len(frac), amountTooPrecise
		}
	}
	for range scale - min(len(frac), scale) {
		if amount, ok = appendDigit(amount, '0'); !ok {
			return 0, 0, amountTooLarge
		}
	}
	return amount, len(frac), amountOK
}

// appendDigit returns v*10 + digit c, or false on int64 overflow.
func appendDigit(v int64, c byte) (int64, bool) {
	d := int64(c - '0')
	if v > (math.MaxInt64-d)/10 {
		return 0, false
	}
	return v*10 + d, true
}

// formatMinor writes minor units in major units ("150.00" for 15000 at
// scale 2), the way a partner wrote them.
func formatMinor(v int64, scale int) string {
	s := fmt.Sprint(v)
	if scale == 0 {
		return s
	}
	if len(s) <= scale {
		s = strings.Repeat("0", scale-len(s)+1) + s
	}
	return s[:len(s)-scale] + "." + s[len(s)-scale:]
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// plural writes "1 decimal place", "3 decimal places".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// FormatPrice writes minor units of a currency as a person reads them
// ("12.50 EUR", "12900 KRW").
func FormatPrice(v int64, code string) string {
	u, ok := lookupCurrency(code)
	if !ok {
		return fmt.Sprintf("%d %s", v, code)
	}
	return formatMinor(v, u.scale) + " " + u.code
}
