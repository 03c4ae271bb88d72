package main

import (
	"errors"
	"fmt"
	"slices"

	"feedline/connectors/decode"
	"feedline/schemas"
)

// delimitedFormats share one decoder; a partner may name any of them for a
// delimited text file.
var delimitedFormats = []string{schemas.FormatCSV, schemas.FormatTSV, schemas.FormatGoogleMerchant, schemas.FormatNaverEP}

// detectFormat implements schemas.DetectFormat with the decoders' sniffing.
func detectFormat(head []byte, named, charset string) (schemas.FileKind, error) {
	if named != "" && !slices.Contains(schemas.Formats, named) {
		return schemas.FileKind{}, schemas.FileError(schemas.ErrUnreadableFile, fmt.Errorf("format %q is not supported; use one of %v", named, schemas.Formats))
	}
	d, err := decode.DetectFile(head, charset)
	if err != nil {
		if errors.Is(err, decode.ErrEmpty) {
			return schemas.FileKind{}, schemas.FileError(schemas.ErrEmptyFile, err)
		}
		return schemas.FileKind{}, schemas.FileError(schemas.ErrUnreadableFile, err)
	}
	kind := schemas.FileKind{Format: d.Format, Delimiter: d.Delimiter, Compression: d.Compression, Charset: d.Charset}
	switch {
	case named == "" || named == d.Format:
		return kind, nil
	case named == schemas.FormatGoogleMerchant && d.Format == schemas.FormatGoogleMerchantXML:
		return kind, nil // a Google Merchant feed is TSV or XML: the file tells which
	case slices.Contains(delimitedFormats, named) && slices.Contains(delimitedFormats, d.Format):
		kind.Format = named
		return kind, nil
	}
	return schemas.FileKind{}, schemas.FileError(schemas.ErrUnreadableFile,
		fmt.Errorf("%w: the file looks like %s, not %s; send it with format=%s or leave the format out", decode.ErrFormatMismatch, d.Format, named, d.Format))
}
