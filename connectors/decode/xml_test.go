package decode

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"feedline/schemas"
)

const rssFeed = `<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0">
<channel>
  <title>Outdoor Co</title>
  <link>https://outdoor.example</link>
  <description>Everything for the trail &amp; the camp</description>
  <item>
    <g:id>TENT-2P</g:id>
    <title>Trail Tent 2P</title>
    <g:title>Trail Tent 2P &#8211; light</g:title>
    <description><![CDATA[Two-person, <b>1.9 kg</b>.]]></description>
    <link>https://outdoor.example/tent-2p</link>
    <g:image_link>https://cdn.outdoor.example/tent-2p.jpg</g:image_link>
    <g:additional_image_link>https://cdn.outdoor.example/tent-2p-b.jpg</g:additional_image_link>
    <g:additional_image_link>https://cdn.outdoor.example/tent-2p-c.jpg</g:additional_image_link>
    <g:availability>in stock</g:availability>
    <g:price>249.00 USD</g:price>
    <g:sale_price>199.00 USD</g:sale_price>
    <g:brand>TrailCo&nbsp;Gear</g:brand>
    <g:gtin>00036000291452</g:gtin>
    <g:product_type>Camping &gt; Tents</g:product_type>
    <g:product_type>Hiking &gt; Shelter</g:product_type>
    <g:shipping>
      <g:country>US</g:country>
      <g:service>Standard</g:service>
      <g:price>4.95 USD</g:price>
    </g:shipping>
    <g:shipping>
      <g:country>CA</g:country>
      <g:price>9.95 USD</g:price>
    </g:shipping>
  </item>
  <item>
    <g:id>MUG-1</g:id>
    <g:title>Enamel Mug</g:title>
    <g:price>12.00 USD</g:price>
    <g:link>https://outdoor.example/mug</g:link>
  </item>
</channel>
</rss>
`

const atomFeed = `<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="http://base.google.com/ns/1.0">
  <title>Example - Online Store</title>
  <link rel="self" href="http://www.example.com"/>
  <updated>2026-07-11T12:00:00Z</updated>
  <entry>
    <id>tag:example.com,2026:TV_123456</id>
    <g:id>TV_123456</g:id>
    <title>LG 22LB4510 - 22" LED TV</title>
    <summary>Attractively styled and easy to use.</summary>
    <link rel="alternate" href="http://www.example.com/tv/22LB4510.html"/>
    <g:image_link>http://images.example.com/TV_123456.png</g:image_link>
    <g:condition>new</g:condition>
    <g:availability>in stock</g:availability>
    <g:price>159.00 USD</g:price>
    <g:shipping><g:country>US</g:country><g:price>14.95 USD</g:price></g:shipping>
    <g:gtin>71919219405200</g:gtin>
  </entry>
</feed>
`

func TestMerchantRSS(t *testing.T) {
	t.Parallel()
	d := openString(t, rssFeed, schemas.DecoderOptions{})
	defer d.Close()
	if d.Format() != schemas.FormatGoogleMerchantXML {
		t.Fatalf("format %s", d.Format())
	}
	got := decodeAll(t, d)
	if got.err != nil || len(got.rows) != 2 {
		t.Fatalf("rows %v err %v", got.rows, got.err)
	}
	row := map[string]string{}
	for i, v := range got.rows[0].Values {
		row[got.cols[i]] = v
	}
	want := map[string]string{
		"id": "TENT-2P", "title": "Trail Tent 2P – light", "description": "Two-person, <b>1.9 kg</b>.",
		"link": "https://outdoor.example/tent-2p", "image_link": "https://cdn.outdoor.example/tent-2p.jpg",
		"additional_image_link": "https://cdn.outdoor.example/tent-2p-b.jpg\nhttps://cdn.outdoor.example/tent-2p-c.jpg",
		"availability":          "in stock", "price": "249.00 USD", "sale_price": "199.00 USD", "brand": "TrailCo\u00a0Gear",
		"gtin": "00036000291452", "product_type": "Camping > Tents\nHiking > Shelter",
		"shipping.country": "US\nCA", "shipping.service": "Standard", "shipping.price": "4.95 USD\n9.95 USD",
	}
	if !reflect.DeepEqual(row, want) {
		t.Errorf("item 1 =\n%q\nwant\n%q", row, want)
	}
	if got.rows[1].Row != 2 || got.rows[1].Values[0] != "MUG-1" {
		t.Errorf("item 2 = %+v", got.rows[1])
	}

	// The google_merchant preset maps the items to products.
	rm := schemas.NewRowMapper(schemas.Mapping{Preset: schemas.PresetGoogleMerchant}, "outdoor", got.cols, time.Now())
	p, issues := rm.Map(got.rows[0])
	if len(issues) > 0 {
		t.Fatalf("issues %+v", issues)
	}
	if p.Price != 24900 || *p.SalePrice != 19900 || len(p.ImageURLs) != 3 || !reflect.DeepEqual(p.Category, []string{"Camping", "Tents"}) ||
		p.Attributes["shipping.price"] != "4.95 USD\n9.95 USD" || p.Attributes["product_type"] != "Camping > Tents\nHiking > Shelter" || p.URL == "" {
		t.Errorf("product = %+v", p)
	}
	p, issues = rm.Map(got.rows[1])
	if len(issues) > 0 || p.URL != "https://outdoor.example/mug" || p.Title != "Enamel Mug" {
		t.Errorf("item 2 = %+v, %+v", p, issues)
	}
}

func TestMerchantAtom(t *testing.T) {
	t.Parallel()
	d := openString(t, atomFeed, schemas.DecoderOptions{Format: schemas.FormatGoogleMerchant})
	defer d.Close()
	got := decodeAll(t, d)
	if got.err != nil || len(got.rows) != 1 || d.Format() != schemas.FormatGoogleMerchantXML {
		t.Fatalf("rows %v err %v format %s", got.rows, got.err, d.Format())
	}
	rm := schemas.NewRowMapper(schemas.Mapping{Preset: schemas.PresetGoogleMerchant}, "tv", got.cols, time.Now())
	p, issues := rm.Map(got.rows[0])
	if len(issues) > 0 {
		t.Fatalf("issues %+v", issues)
	}
	if p.SKU != "TV_123456" || p.URL != "http://www.example.com/tv/22LB4510.html" || p.Description != "Attractively styled and easy to use." ||
		p.Price != 15900 || p.Attributes["condition"] != "new" || p.Attributes["shipping.price"] != "14.95 USD" {
		t.Errorf("product = %+v", p)
	}
}

func TestMerchantXMLProblems(t *testing.T) {
	t.Parallel()
	head := `<?xml version="1.0"?><rss xmlns:g="http://base.google.com/ns/1.0"><channel>`
	item := func(id, extra string) string {
		return "<item><g:id>" + id + "</g:id><g:title>T</g:title><g:price>1 USD</g:price>" + extra + "</item>"
	}
	// An item over the row limit is one rejected row; the next items go on.
	d := openString(t, head+item("1", "")+item("2", "<g:description>"+strings.Repeat("x", 2000)+"</g:description>")+item("3", "")+"</channel></rss>", schemas.DecoderOptions{MaxRowBytes: 1000})
	got := decodeAll(t, d)
	d.Close()
	if got.err != nil || len(got.rows) != 2 || got.rows[1].Row != 3 || !strings.Contains(got.rejects[2], "limit") {
		t.Errorf("long item: rows %v rejects %v err %v", got.rows, got.rejects, got.err)
	}
	// Malformed markup ends the file with its line.
	d = openString(t, head+item("1", "")+"\n<item><g:id>2</g:id><g:title>a < b</g:title></item></channel></rss>", schemas.DecoderOptions{})
	got = decodeAll(t, d)
	d.Close()
	if !errors.Is(got.err, ErrCorrupt) || !strings.Contains(got.err.Error(), "line 2") || len(got.rows) != 1 {
		t.Errorf("malformed: rows %v err %v", got.rows, got.err)
	}
	// A file cut short.
	d = openString(t, head+item("1", "")+"<item><g:id>2</g:id><g:ti", schemas.DecoderOptions{})
	got = decodeAll(t, d)
	d.Close()
	if !errors.Is(got.err, ErrCorrupt) {
		t.Errorf("cut short: %v", got.err)
	}
}

// A few thousand items decode one at a time.
func TestMerchantXMLOfThousandsOfItems(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel><title>x</title>`)
	for i := range 5000 {
		fmt.Fprintf(&b, "<item><g:id>P%d</g:id><title>Item %d</title><g:price>%d.00 EUR</g:price><g:additional_image_link>https://i/%d-a.jpg</g:additional_image_link><g:additional_image_link>https://i/%d-b.jpg</g:additional_image_link></item>\n", i, i, i+1, i, i)
	}
	b.WriteString("</channel></rss>")
	d := openString(t, b.String(), schemas.DecoderOptions{})
	defer d.Close()
	got := decodeAll(t, d)
	if got.err != nil || len(got.rows) != 5000 || got.rows[4999].Values[0] != "P4999" || !strings.Contains(got.rows[10].Values[3], "\n") {
		t.Fatalf("%d rows, err %v", len(got.rows), got.err)
	}
}
