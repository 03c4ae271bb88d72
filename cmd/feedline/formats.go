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
func detectFormat(head []byte, named string) (string, rune, error) {
	if named != "" && !slices.Contains(schemas.Formats, named) {
		return "", 0, schemas.FileError(schemas.ErrUnreadableFile, fmt.Errorf("format %q is not supported; use one of %v", named, schemas.Formats))
	}
	found, delim, err := decode.Detect(head)
	if err != nil {
		if errors.Is(err, decode.ErrEmpty) {
			return "", 0, schemas.FileError(schemas.ErrEmptyFile, err)
		}
		return "", 0, schemas.FileError(schemas.ErrUnreadableFile, err)
	}
	switch {
	case named == "" || named == found:
		return found, delim, nil
	case slices.Contains(delimitedFormats, named) && slices.Contains(delimitedFormats, found):
		return named, delim, nil
	}
	return "", 0, schemas.FileError(schemas.ErrUnreadableFile,
		fmt.Errorf("%w: the file looks like %s, not %s; send it with format=%s or leave the format out", decode.ErrFormatMismatch, found, named, found))
}
