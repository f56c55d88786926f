package sqlclass

import "strings"

// Numbers in a query string.
//
// A client of the simple query protocol writes its values into the text:
// pgbench's "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"
// comes with a different account number each time, so a cache keyed by
// the exact text misses on nearly every statement, and each costs a full
// parse. What a data statement (SELECT, INSERT, UPDATE, DELETE) does —
// its class, tables, columns, functions, labels, fingerprint and
// normalized text — does not depend on the values of its numeric
// constants: the classifier reads no number in them (it reads numbers
// only in options such as EXPLAIN's ANALYZE 0, which are not data
// statements), and the fingerprint and the normalized text leave
// constants out. So a data statement's facts are also cached under its
// number key: the text with every numeric constant replaced by a NUL
// byte, which no classified text holds. Two strings share a number key
// only when they differ in nothing but the digits of numeric constants,
// found by a scanner that follows PostgreSQL's lexical rules for what
// can hold a digit that is not a number (identifiers, quoted identifiers,
// string constants of every kind, dollar quoting, comments, parameters).
// Anything it is not sure of — a number run into a letter (0x1F, 1_000,
// 1abc), a string or comment left open, a NUL byte — gives no number key,
// and the string is cached by its exact text only.

// numberKeyPrefix starts every number key. An exact-text key holds no
// NUL (Classifier.cached refuses such text before any lookup) and a
// key with search_path distrusted starts with a single NUL, so a number
// key, starting with two, can equal neither.
const numberKeyPrefix = "\x00\x00"

// numberKey returns sql's number key, and false when sql has no numeric
// constant or cannot be scanned with certainty. trustPath is part of the
// key: facts read with search_path distrusted are kept apart.
func numberKey(sql string, trustPath bool) (string, bool) {
	key, found, sure := scanNumbers(sql, trustPath)
	return key, found && sure
}

// numberless reports whether sql certainly holds no numeric constant.
func numberless(sql string) bool {
	_, found, sure := scanNumbers(sql, true)
	return sure && !found
}

// scanNumbers builds sql's number key; found says it holds a numeric
// constant, and sure that the scanner read all of it with certainty.
func scanNumbers(sql string, trustPath bool) (key string, found, sure bool) {
	if strings.IndexByte(sql, 0) >= 0 {
		return "", false, false
	}
	var b strings.Builder
	last := 0 // sql[last:i] is copied to the key unchanged
	mark := func(start, end int) {
		if !found {
			b.Grow(len(sql) + 3)
			b.WriteString(numberKeyPrefix)
			if trustPath {
				b.WriteByte('t')
			} else {
				b.WriteByte('u')
			}
		}
		found = true
		b.WriteString(sql[last:start])
		b.WriteByte(0)
		last = end
	}
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			end := strings.IndexAny(sql[i:], "\n\r")
			if end < 0 {
				i = len(sql)
			} else {
				i += end
			}
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			end, ok := skipBlockComment(sql, i)
			if !ok {
				return "", found, false
			}
			i = end
		case c == '\'':
			escapes := i == 1 && (sql[0] == 'e' || sql[0] == 'E') ||
				i >= 2 && (sql[i-1] == 'e' || sql[i-1] == 'E') && !isIdentByte(sql[i-2])
			end, ok := skipQuoted(sql, i, '\'', escapes)
			if !ok {
				return "", found, false
			}
			i = end
		case c == '"':
			end, ok := skipQuoted(sql, i, '"', false)
			if !ok {
				return "", found, false
			}
			i = end
		case c == '$':
			end, ok := skipDollar(sql, i)
			if !ok {
				return "", found, false
			}
			i = end
		case isIdentStart(c):
			i++
			for i < len(sql) && isIdentByte(sql[i]) {
				i++
			}
		case isDigit(c) || c == '.' && i+1 < len(sql) && isDigit(sql[i+1]):
			if i > 0 && (isIdentByte(sql[i-1]) || sql[i-1] == '.') {
				return "", found, false // "t.5", "1..2": not a plain constant
			}
			end, ok := scanNumber(sql, i)
			if !ok {
				return "", found, false
			}
			mark(i, end)
			i = end
		default:
			i++
		}
	}
	if !found {
		return "", false, true
	}
	b.WriteString(sql[last:])
	return b.String(), true, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isIdentStart and isIdentByte are PostgreSQL's ident_start and
// ident_cont: any byte of a non-ASCII character counts as a letter.
func isIdentStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentByte(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }

// scanNumber returns the end of the numeric constant at sql[i]: digits,
// a fraction, an exponent. A constant followed by a letter, a digit
// separator, a second point or a dangling exponent is not one the
// scanner is sure of.
func scanNumber(sql string, i int) (int, bool) {
	digits := func() int {
		n := 0
		for i < len(sql) && isDigit(sql[i]) {
			i++
			n++
		}
		return n
	}
	whole := digits()
	if i < len(sql) && sql[i] == '.' {
		i++
		if digits() == 0 && whole == 0 {
			return 0, false
		}
	}
	if i < len(sql) && (sql[i] == 'e' || sql[i] == 'E') {
		i++
		if i < len(sql) && (sql[i] == '+' || sql[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, false
		}
	}
	if i < len(sql) && (isIdentByte(sql[i]) || sql[i] == '.') {
		return 0, false
	}
	return i, true
}

// skipBlockComment returns the end of the comment at sql[i]; comments
// nest, as in PostgreSQL.
func skipBlockComment(sql string, i int) (int, bool) {
	depth := 0
	for i < len(sql) {
		switch {
		case strings.HasPrefix(sql[i:], "/*"):
			depth++
			i += 2
		case strings.HasPrefix(sql[i:], "*/"):
			depth--
			i += 2
			if depth == 0 {
				return i, true
			}
		default:
			i++
		}
	}
	return 0, false
}

// skipQuoted returns the end of the string constant or quoted identifier
// that opens with quote at sql[i]: a doubled quote stands for itself,
// and in an escape string (E'...') a backslash escapes the next byte.
func skipQuoted(sql string, i int, quote byte, escapes bool) (int, bool) {
	i++
	for i < len(sql) {
		switch c := sql[i]; {
		case escapes && c == '\\':
			i += 2
		case c == quote && i+1 < len(sql) && sql[i+1] == quote:
			i += 2
		case c == quote:
			return i + 1, true
		default:
			i++
		}
	}
	return 0, false
}

// skipDollar returns the end of what starts with '$' at sql[i]: a
// parameter ($1, kept as it is: parameters are not constants) or a
// dollar-quoted string ($$...$$, $tag$...$tag$).
func skipDollar(sql string, i int) (int, bool) {
	j := i + 1
	if j < len(sql) && isDigit(sql[j]) {
		for j < len(sql) && isDigit(sql[j]) {
			j++
		}
		if j < len(sql) && isIdentByte(sql[j]) {
			return 0, false
		}
		return j, true
	}
	if j < len(sql) && isIdentStart(sql[j]) {
		for j < len(sql) && isIdentByte(sql[j]) && sql[j] != '$' {
			j++
		}
	}
	if j >= len(sql) || sql[j] != '$' {
		return 0, false // a lone '$': not something to be sure of
	}
	tag := sql[i : j+1]
	end := strings.Index(sql[j+1:], tag)
	if end < 0 {
		return 0, false
	}
	return j + 1 + end + len(tag), true
}
