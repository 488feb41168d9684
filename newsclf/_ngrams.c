/* N-gram columns in compiled code, without a Python string per n-gram: the column scikit-learn's
 * HashingVectorizer gives each word or char_wb n-gram of a text (hashed_columns), or its column in a
 * fitted vocabulary (vocabulary_columns, through a table vocabulary_table builds from the terms).
 *
 * Same analysis as scikit-learn's (feature_extraction/text.py), step for step:
 *   - lowercase with str.lower() (called on the text, so Python's own case mapping);
 *   - word: tokens are the maximal runs of two or more word characters, a word character being
 *     what Python's re module calls \w (Py_UNICODE_ISALNUM or '_'), which is token_pattern
 *     r"(?u)\b\w\w+\b"; n-grams join n consecutive tokens with one space;
 *   - char_wb: words split on Python's whitespace (Py_UNICODE_ISSPACE), each padded with one space
 *     on both sides, n-grams of code points, a word shorter than n counted once;
 * then each n-gram's UTF-8 bytes are hashed with MurmurHash3_x86_32 (seed 0, signed) and mapped to
 * a column as sklearn/feature_extraction/_hashing_fast.pyx maps it, or looked up in the vocabulary
 * table (each hit confirmed by comparing the term's bytes, so no hash collision can misplace one).
 * The callers sum the repeated columns of a row as scikit-learn does (scipy's sum_duplicates), so
 * the matrices are the same bit for bit; tests/newsclf/test_hashing.py and test_counting.py compare
 * them on arbitrary text.
 *
 * A text that cannot be encoded as UTF-8 (a lone surrogate) makes the call return None, and the
 * caller falls back to scikit-learn, which then behaves as it always did.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

/* MurmurHash3_x86_32 (Austin Appleby's public-domain algorithm), little-endian block reads. */
static int32_t murmur3_32(const unsigned char *key, Py_ssize_t len) {
    const uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
    uint32_t h = 0; /* seed 0, as HashingVectorizer uses */
    Py_ssize_t blocks = len / 4;
    for (Py_ssize_t i = 0; i < blocks; i++) {
        uint32_t k;
        memcpy(&k, key + 4 * i, 4);
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
        h = rotl32(h, 13);
        h = h * 5 + 0xe6546b64;
    }
    const unsigned char *tail = key + 4 * blocks;
    uint32_t k = 0;
    switch (len & 3) {
    case 3:
        k ^= (uint32_t)tail[2] << 16; /* fall through */
    case 2:
        k ^= (uint32_t)tail[1] << 8; /* fall through */
    case 1:
        k ^= tail[0];
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
    }
    h ^= (uint32_t)len;
    h ^= h >> 16;
    h *= 0x85ebca6b;
    h ^= h >> 13;
    h *= 0xc2b2ae35;
    h ^= h >> 16;
    return (int32_t)h;
}

/* The column _hashing_fast.pyx gives a hash (abs of INT32_MIN handled as it handles it). */
static int32_t column_of(int32_t h, int64_t n_features) {
    if (h == INT32_MIN)
        return (int32_t)((2147483647 - (n_features - 1)) % n_features);
    return (int32_t)((int64_t)(h < 0 ? -h : h) % n_features);
}

typedef struct {
    int32_t *data;
    Py_ssize_t size, capacity;
} Columns;

static int columns_push(Columns *columns, int32_t value) {
    if (columns->size == columns->capacity) {
        Py_ssize_t capacity = columns->capacity ? 2 * columns->capacity : 1 << 16;
        int32_t *grown = PyMem_Realloc(columns->data, (size_t)capacity * sizeof(int32_t));
        if (!grown) {
            PyErr_NoMemory();
            return -1;
        }
        columns->data = grown, columns->capacity = capacity;
    }
    columns->data[columns->size++] = value;
    return 0;
}

/* A scratch byte buffer, grown as needed. */
typedef struct {
    unsigned char *data;
    Py_ssize_t capacity;
} Buffer;

static int buffer_reserve(Buffer *buffer, Py_ssize_t size) {
    if (size <= buffer->capacity)
        return 0;
    Py_ssize_t capacity = size > 2 * buffer->capacity ? size : 2 * buffer->capacity;
    unsigned char *grown = PyMem_Realloc(buffer->data, (size_t)capacity);
    if (!grown) {
        PyErr_NoMemory();
        return -1;
    }
    buffer->data = grown, buffer->capacity = capacity;
    return 0;
}

static int utf8_length(Py_UCS4 ch) { return ch < 0x80 ? 1 : ch < 0x800 ? 2 : ch < 0x10000 ? 3 : 4; }

static int is_word_character(Py_UCS4 ch) { return Py_UNICODE_ISALNUM(ch) || ch == '_'; }

/* Where each n-gram goes: a hashed column, or its vocabulary column (n-grams outside it dropped). */
typedef struct {
    int64_t n_features;           /* hashing: the number of columns */
    const unsigned char *terms;   /* vocabulary: every term's UTF-8 bytes, in column order */
    const int64_t *term_offsets;  /* vocabulary: where term k starts (term k + 1's start less 1: its end) */
    const uint32_t *slots;        /* vocabulary: pairs (tag, column + 1), 0 = empty; open addressing */
    uint64_t mask;                /* vocabulary: number of slot pairs - 1 (a power of two) */
    Columns *out;
} Sink;

/* 64-bit FNV-1a over the bytes, then MurmurHash3's fmix64: spreads short terms over the whole table. */
static uint64_t term_hash(const unsigned char *bytes, Py_ssize_t length) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (Py_ssize_t i = 0; i < length; i++)
        h = (h ^ bytes[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* The column of a term in the vocabulary table, -1 when the vocabulary does not hold it. */
static int64_t table_lookup(const Sink *sink, const unsigned char *gram, Py_ssize_t length) {
    uint64_t h = term_hash(gram, length);
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint64_t slot = h & sink->mask;; slot = (slot + 1) & sink->mask) {
        uint32_t column_plus_one = sink->slots[2 * slot + 1];
        if (!column_plus_one)
            return -1;
        if (sink->slots[2 * slot] != tag)
            continue;
        int64_t column = (int64_t)column_plus_one - 1;
        int64_t start = sink->term_offsets[column], end = sink->term_offsets[column + 1] - 1; /* less its NUL */
        if (end - start == length && memcmp(sink->terms + start, gram, (size_t)length) == 0)
            return column;
    }
}

static int emit(Sink *sink, const unsigned char *gram, Py_ssize_t length) {
    if (!sink->slots)
        return columns_push(sink->out, column_of(murmur3_32(gram, length), sink->n_features));
    int64_t column = table_lookup(sink, gram, length);
    return column < 0 ? 0 : columns_push(sink->out, (int32_t)column);
}

/* A token: where its UTF-8 bytes start and end. */
typedef struct {
    Py_ssize_t start, end;
} Span;

/* Word n-grams of one lowercased text (its code points and UTF-8 bytes). */
static int word_columns(int kind, const void *chars, Py_ssize_t n_chars, const char *utf8, int min_n, int max_n,
                        Sink *sink, Buffer *joined, Span **tokens, Py_ssize_t *tokens_capacity) {
    Py_ssize_t n_tokens = 0, byte = 0, i = 0;
    while (i < n_chars) {
        Py_UCS4 ch = PyUnicode_READ(kind, chars, i);
        if (!is_word_character(ch)) {
            byte += utf8_length(ch), i++;
            continue;
        }
        Py_ssize_t start = byte, length = 0;
        while (i < n_chars && is_word_character(ch = PyUnicode_READ(kind, chars, i))) {
            byte += utf8_length(ch), i++, length++;
        }
        if (length < 2)
            continue;
        if (n_tokens == *tokens_capacity) {
            Py_ssize_t capacity = *tokens_capacity ? 2 * *tokens_capacity : 256;
            Span *grown = PyMem_Realloc(*tokens, (size_t)capacity * sizeof(Span));
            if (!grown) {
                PyErr_NoMemory();
                return -1;
            }
            *tokens = grown, *tokens_capacity = capacity;
        }
        (*tokens)[n_tokens++] = (Span){start, byte};
    }
    const Span *spans = *tokens;
    for (int n = min_n; n <= max_n && n <= n_tokens; n++) {
        for (Py_ssize_t first = 0; first + n <= n_tokens; first++) {
            int failed;
            if (n == 1) {
                failed = emit(sink, (const unsigned char *)utf8 + spans[first].start,
                              spans[first].end - spans[first].start);
            } else {
                Py_ssize_t size = 0;
                for (int k = 0; k < n; k++)
                    size += spans[first + k].end - spans[first + k].start + 1;
                if (buffer_reserve(joined, size) < 0)
                    return -1;
                unsigned char *at = joined->data;
                for (int k = 0; k < n; k++) {
                    Py_ssize_t length = spans[first + k].end - spans[first + k].start;
                    if (k)
                        *at++ = ' ';
                    memcpy(at, utf8 + spans[first + k].start, (size_t)length);
                    at += length;
                }
                failed = emit(sink, joined->data, at - joined->data);
            }
            if (failed < 0)
                return -1;
        }
    }
    return 0;
}

/* char_wb n-grams of one lowercased text. */
static int char_wb_columns(int kind, const void *chars, Py_ssize_t n_chars, const char *utf8, int min_n, int max_n,
                           Sink *sink, Buffer *padded, Buffer *offsets_buffer) {
    Py_ssize_t byte = 0, i = 0;
    while (i < n_chars) {
        Py_UCS4 ch = PyUnicode_READ(kind, chars, i);
        if (Py_UNICODE_ISSPACE(ch)) {
            byte += utf8_length(ch), i++;
            continue;
        }
        Py_ssize_t start_char = i, start_byte = byte;
        while (i < n_chars && !Py_UNICODE_ISSPACE(ch = PyUnicode_READ(kind, chars, i)))
            byte += utf8_length(ch), i++;
        Py_ssize_t word_chars = i - start_char, word_bytes = byte - start_byte;
        /* " " + word + " ": its bytes, and the byte offset of each of its code points (plus the end). */
        Py_ssize_t w_len = word_chars + 2;
        if (buffer_reserve(padded, word_bytes + 2) < 0 ||
            buffer_reserve(offsets_buffer, (w_len + 1) * (Py_ssize_t)sizeof(Py_ssize_t)) < 0)
            return -1;
        unsigned char *bytes = padded->data;
        Py_ssize_t *offsets = (Py_ssize_t *)offsets_buffer->data;
        bytes[0] = ' ';
        memcpy(bytes + 1, utf8 + start_byte, (size_t)word_bytes);
        bytes[word_bytes + 1] = ' ';
        offsets[0] = 0;
        Py_ssize_t at = 1;
        for (Py_ssize_t k = 0; k < word_chars; k++) {
            offsets[k + 1] = at;
            at += utf8_length(PyUnicode_READ(kind, chars, start_char + k));
        }
        offsets[w_len - 1] = at;
        offsets[w_len] = at + 1;
        for (int n = min_n; n <= max_n; n++) {
            Py_ssize_t offset = 0;
            Py_ssize_t end = n < w_len ? n : w_len; /* w[0:n] of a word shorter than n is all of it */
            if (emit(sink, bytes, offsets[end]) < 0)
                return -1;
            while (offset + n < w_len) {
                offset++;
                if (emit(sink, bytes + offsets[offset], offsets[offset + n] - offsets[offset]) < 0)
                    return -1;
            }
            if (offset == 0)
                break;
        }
    }
    return 0;
}

/* Every n-gram of each text into ``sink``: (indptr, indices) as bytes, or None (see the top). */
static PyObject *columns_of_texts(PyObject *texts, const char *analyzer, int min_n, int max_n, int lowercase,
                                  Sink *sink) {
    int by_word = strcmp(analyzer, "word") == 0;
    if (!by_word && strcmp(analyzer, "char_wb") != 0) {
        PyErr_Format(PyExc_ValueError, "analyzer must be 'word' or 'char_wb', got '%s'", analyzer);
        return NULL;
    }
    if (min_n < 1 || max_n < min_n) {
        PyErr_SetString(PyExc_ValueError, "need 1 <= min_n <= max_n");
        return NULL;
    }
    PyObject *sequence = PySequence_Fast(texts, "texts must be a sequence of str");
    if (!sequence)
        return NULL;
    Py_ssize_t n_texts = PySequence_Fast_GET_SIZE(sequence);
    PyObject *result = NULL, *indptr_bytes = PyBytes_FromStringAndSize(NULL, (n_texts + 1) * 8);
    Columns columns = {0};
    Buffer first = {0}, second = {0};
    Span *tokens = NULL;
    Py_ssize_t tokens_capacity = 0;
    sink->out = &columns;
    if (!indptr_bytes)
        goto done;
    int64_t *indptr = (int64_t *)PyBytes_AS_STRING(indptr_bytes);
    indptr[0] = 0;
    for (Py_ssize_t t = 0; t < n_texts; t++) {
        PyObject *text = PySequence_Fast_GET_ITEM(sequence, t);
        if (!PyUnicode_Check(text)) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        PyObject *lowered = lowercase ? PyObject_CallMethod(text, "lower", NULL) : Py_NewRef(text);
        if (!lowered)
            goto done;
        if (PyUnicode_READY(lowered) < 0) { /* a no-op for every str Python 3.11 makes; kept for old C APIs */
            Py_DECREF(lowered);
            goto done;
        }
        const char *utf8 = PyUnicode_AsUTF8AndSize(lowered, NULL);
        if (!utf8) {
            Py_DECREF(lowered);
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
                goto done;
            PyErr_Clear();
            result = Py_NewRef(Py_None);
            goto done;
        }
        int kind = PyUnicode_KIND(lowered);
        const void *chars = PyUnicode_DATA(lowered);
        Py_ssize_t n_chars = PyUnicode_GET_LENGTH(lowered);
        int failed = by_word ? word_columns(kind, chars, n_chars, utf8, min_n, max_n, sink, &first, &tokens,
                                            &tokens_capacity)
                             : char_wb_columns(kind, chars, n_chars, utf8, min_n, max_n, sink, &first, &second);
        Py_DECREF(lowered);
        if (failed < 0)
            goto done;
        indptr[t + 1] = columns.size;
    }
    PyObject *indices_bytes = PyBytes_FromStringAndSize((const char *)columns.data, columns.size * 4);
    if (indices_bytes)
        result = PyTuple_Pack(2, indptr_bytes, indices_bytes);
    Py_XDECREF(indices_bytes);
done:
    Py_XDECREF(indptr_bytes);
    Py_DECREF(sequence);
    PyMem_Free(columns.data);
    PyMem_Free(first.data);
    PyMem_Free(second.data);
    PyMem_Free(tokens);
    return result;
}

static PyObject *hashed_columns(PyObject *self, PyObject *args) {
    PyObject *texts;
    const char *analyzer;
    int min_n, max_n, lowercase;
    long long n_features;
    if (!PyArg_ParseTuple(args, "OsiiLp", &texts, &analyzer, &min_n, &max_n, &n_features, &lowercase))
        return NULL;
    if (n_features < 1 || n_features > 2147483647LL) {
        PyErr_SetString(PyExc_ValueError, "need 1 <= n_features < 2**31");
        return NULL;
    }
    Sink sink = {.n_features = n_features};
    return columns_of_texts(texts, analyzer, min_n, max_n, lowercase, &sink);
}

/* vocabulary_table(terms) -> (term_offsets, slots) bytes
 *
 * terms: every term's UTF-8 bytes in column order, each followed by one NUL byte (no term holds a
 * NUL). term_offsets: int64, where each term starts, plus the end; slots: uint32 (tag, column + 1)
 * pairs, a power of two of them at least twice the number of terms.
 */
static PyObject *vocabulary_table(PyObject *self, PyObject *args) {
    Py_buffer terms;
    if (!PyArg_ParseTuple(args, "y*", &terms))
        return NULL;
    const unsigned char *bytes = terms.buf;
    Py_ssize_t n_terms = 0;
    for (Py_ssize_t i = 0; i < terms.len; i++)
        n_terms += bytes[i] == 0;
    if (terms.len && bytes[terms.len - 1] != 0) {
        PyBuffer_Release(&terms);
        PyErr_SetString(PyExc_ValueError, "every term must end with a NUL byte");
        return NULL;
    }
    if (n_terms >= 0x7fffffff) {
        PyBuffer_Release(&terms);
        PyErr_SetString(PyExc_ValueError, "too many terms for a table");
        return NULL;
    }
    uint64_t n_slots = 2;
    while (n_slots < 2 * (uint64_t)n_terms)
        n_slots <<= 1;
    PyObject *offsets_bytes = PyBytes_FromStringAndSize(NULL, (n_terms + 1) * 8);
    PyObject *slots_bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n_slots * 8));
    if (!offsets_bytes || !slots_bytes) {
        Py_XDECREF(offsets_bytes);
        Py_XDECREF(slots_bytes);
        PyBuffer_Release(&terms);
        return NULL;
    }
    int64_t *offsets = (int64_t *)PyBytes_AS_STRING(offsets_bytes);
    uint32_t *slots = (uint32_t *)PyBytes_AS_STRING(slots_bytes);
    memset(slots, 0, n_slots * 8);
    Py_ssize_t column = 0, start = 0;
    for (Py_ssize_t i = 0; i < terms.len; i++) {
        if (bytes[i])
            continue;
        offsets[column] = start;
        uint64_t h = term_hash(bytes + start, i - start);
        uint64_t slot = h & (n_slots - 1);
        while (slots[2 * slot + 1])
            slot = (slot + 1) & (n_slots - 1);
        slots[2 * slot] = (uint32_t)(h >> 32);
        slots[2 * slot + 1] = (uint32_t)(column + 1);
        column++, start = i + 1;
    }
    offsets[n_terms] = start; /* term k ends one byte (its NUL) before term k + 1 starts */
    PyBuffer_Release(&terms);
    PyObject *result = PyTuple_Pack(2, offsets_bytes, slots_bytes);
    Py_DECREF(offsets_bytes);
    Py_DECREF(slots_bytes);
    return result;
}

/* vocabulary_columns(texts, analyzer, min_n, max_n, lowercase, terms, term_offsets, slots)
 *     -> (indptr, indices) bytes, or None
 *
 * As hashed_columns, with each n-gram's column in the vocabulary of vocabulary_table's table;
 * n-grams outside the vocabulary are left out, as CountVectorizer leaves them out.
 */
static PyObject *vocabulary_columns(PyObject *self, PyObject *args) {
    PyObject *texts;
    const char *analyzer;
    int min_n, max_n, lowercase;
    Py_buffer terms, offsets, slots;
    if (!PyArg_ParseTuple(args, "Osiipy*y*y*", &texts, &analyzer, &min_n, &max_n, &lowercase, &terms, &offsets,
                          &slots))
        return NULL;
    PyObject *result = NULL;
    uint64_t n_slots = (uint64_t)slots.len / 8;
    if (n_slots < 2 || (n_slots & (n_slots - 1)) || offsets.len % 8 || offsets.len < 8) {
        PyErr_SetString(PyExc_ValueError, "not a table from vocabulary_table");
    } else {
        Sink sink = {.terms = terms.buf, .term_offsets = offsets.buf, .slots = slots.buf, .mask = n_slots - 1};
        result = columns_of_texts(texts, analyzer, min_n, max_n, lowercase, &sink);
    }
    PyBuffer_Release(&terms);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&slots);
    return result;
}

static PyMethodDef methods[] = {
    {"hashed_columns", hashed_columns, METH_VARARGS,
     "hashed_columns(texts, analyzer, min_n, max_n, n_features, lowercase) -> (indptr, indices) bytes, or None\n\n"
     "The HashingVectorizer column of every word or char_wb n-gram of each text, repeats included."},
    {"vocabulary_table", vocabulary_table, METH_VARARGS,
     "vocabulary_table(terms) -> (term_offsets, slots) bytes: the lookup table of NUL-terminated terms."},
    {"vocabulary_columns", vocabulary_columns, METH_VARARGS,
     "vocabulary_columns(texts, analyzer, min_n, max_n, lowercase, terms, term_offsets, slots)\n"
     "    -> (indptr, indices) bytes, or None\n\n"
     "The vocabulary column of every word or char_wb n-gram of each text that the vocabulary holds."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ngrams", "N-gram columns in compiled code.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__ngrams(void) { return PyModule_Create(&module); }
