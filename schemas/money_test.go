package schemas

import (
	"strings"
	"testing"
)

func TestParseMoney(t *testing.T) {
	tests := []struct {
		in, def  string
		amount   int64
		currency string
	}{
		{"12,900원", "", 12900, "KRW"},
		{"12,900 원", "", 12900, "KRW"},
		{"₩12900", "", 12900, "KRW"},
		{"12900", "KRW", 12900, "KRW"},
		{"12900 KRW", "", 12900, "KRW"},
		{"12900.00", "KRW", 12900, "KRW"}, // exact superfluous zeros
		{"1.299,00 EUR", "", 129900, "EUR"},
		{"15.00 USD", "", 1500, "USD"},
		{"USD 15", "", 1500, "USD"},
		{"usd 15", "", 1500, "USD"},
		{"$15.99", "", 1599, "USD"},
		{"US$15.99", "", 1599, "USD"},
		{"€1.299,00", "", 129900, "EUR"},
		{"£3", "", 300, "GBP"},
		{"¥500", "", 500, "JPY"},
		{"500円", "", 500, "JPY"},
		{"¥500 CNY", "", 50000, "CNY"},
		{"1 299,00 €", "", 129900, "EUR"},
		{"1\u00a0299,00\u00a0€", "", 129900, "EUR"},
		{"1\u202f299,00 €", "", 129900, "EUR"},
		{"1'299.50 CHF", "", 129950, "CHF"},
		{"1,299.00", "USD", 129900, "USD"},
		{"1,299", "USD", 129900, "USD"},      // single separator + 3 digits: thousands
		{"1.299", "EUR", 129900, "EUR"},      // same with '.'
		{"1,299", "BHD", 1299, "BHD"},        // 3-decimal currency: decimal
		{"15.5", "EUR", 1550, "EUR"},         // single separator, not 3 digits: decimal
		{"15,50", "EUR", 1550, "EUR"},        //
		{"1.234.567", "KRW", 1234567, "KRW"}, // repeated: thousands
		{"1,234,567.89", "USD", 123456789, "USD"},
		{"1,00,000", "INR", 10000000, "INR"}, // lakh grouping
		{"15.", "USD", 1500, "USD"},
		{"0.990", "USD", 99, "USD"}, // nothing to group before the separator: decimal
		{"0.5", "KWD", 500, "KWD"},
		{"15.999 BHD", "", 15999, "BHD"},
		{"$15", "CAD", 1500, "CAD"},    // the default fits the symbol
		{"$15", "KRW", 1500, "USD"},    // it does not: the symbol wins
		{"15 EUR", "KRW", 1500, "EUR"}, // a written code wins over the default
		{"\ufeff 42 ", "EUR", 4200, "EUR"},
		{"92233720368547758.07", "USD", 9223372036854775807, "USD"},
	}
	for _, tt := range tests {
		amount, currency, err := ParseMoney(tt.in, tt.def)
		if err != nil {
			t.Errorf("ParseMoney(%q, %q): %v", tt.in, tt.def, err)
			continue
		}
		if amount != tt.amount || currency != tt.currency {
			t.Errorf("ParseMoney(%q, %q) = %d %s, want %d %s", tt.in, tt.def, amount, currency, tt.amount, tt.currency)
		}
	}
}

func TestParseMoneyErrors(t *testing.T) {
	tests := []struct {
		in, def string
		want    string // substring of the error
	}{
		{"", "EUR", "empty"},
		{"   ", "EUR", "empty"},
		{"abc", "EUR", `"abc" is not a number`},
		{"12 34", "EUR", "is not a number"},
		{"10-20", "EUR", "is not a number"},
		{"1,2,3", "EUR", "is not a number"},
		{"1.2.3,4,5", "EUR", "is not a number"},
		{"1,299.00.00", "USD", "is not a number"},
		{"15 EUR USD", "", `names both EUR and USD`},
		{"$15 EUR", "", `names both USD and EUR`},
		{"€15 GBP", "", `names both EUR and GBP`},
		{"$15 €", "", `names currency symbols $ and €`},
		{"12 XYZ", "", `names currency "XYZ", which is not an ISO 4217 code`},
		{"15 euro", "", "is not a number"},
		{"-15.00", "EUR", `"-15.00" is negative`},
		{"−15", "EUR", "is negative"},
		{"1.2345", "EUR", `"1.2345" has 4 decimal places but EUR has 2`},
		{"1,299.999 EUR", "", "has 3 decimal places but EUR has 2"},
		{"0.999 USD", "", "has 3 decimal places but USD has 2"},
		{"12.5", "KRW", "has 1 decimal place but KRW has 0"},
		{"99999999999999999999", "KRW", "is too large"},
		{"92233720368547758.08", "USD", "is too large"},
		{"15", "", "names no currency"},
		{"15", "XYZ", `default currency "XYZ" is not an ISO 4217 code`},
		{"15", "XXX", `default currency "XXX" is not an ISO 4217 code`},
	}
	for _, tt := range tests {
		_, _, err := ParseMoney(tt.in, tt.def)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseMoney(%q, %q) error = %v, want it to contain %q", tt.in, tt.def, err, tt.want)
		}
	}
}

func TestCurrencyCode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"KRW": "KRW", "usd": "USD", " Eur ": "EUR"} {
		if got, ok := CurrencyCode(in); !ok || got != want {
			t.Errorf("CurrencyCode(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "US", "USDX", "ABC", "XXX", "원", "12$"} {
		if got, ok := CurrencyCode(in); ok {
			t.Errorf("CurrencyCode(%q) = %q, want refused", in, got)
		}
	}
}

func TestCurrencyScaleComesFromISO(t *testing.T) {
	for code, scale := range map[string]int{"KRW": 0, "JPY": 0, "EUR": 2, "USD": 2, "BHD": 3, "KWD": 3} {
		u, ok := lookupCurrency(code)
		if !ok || u.scale != scale || u.code != code {
			t.Errorf("lookupCurrency(%s) = %+v, %v; want scale %d", code, u, ok, scale)
		}
	}
	if u, ok := lookupCurrency("eur"); !ok || u.code != "EUR" {
		t.Errorf("lookupCurrency(eur) = %+v, %v", u, ok)
	}
	for _, bad := range []string{"", "EU", "EURO", "XYZ", "XXX"} {
		if u, ok := lookupCurrency(bad); ok {
			t.Errorf("lookupCurrency(%q) = %+v, want not found", bad, u)
		}
	}
}

func TestFormatMinor(t *testing.T) {
	tests := []struct {
		v     int64
		scale int
		want  string
	}{
		{15000, 0, "15000"},
		{15000, 2, "150.00"},
		{5, 2, "0.05"},
		{1299, 3, "1.299"},
	}
	for _, tt := range tests {
		if got := formatMinor(tt.v, tt.scale); got != tt.want {
			t.Errorf("formatMinor(%d, %d) = %q, want %q", tt.v, tt.scale, got, tt.want)
		}
	}
}
