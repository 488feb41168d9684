/* Hashed n-gram columns in compiled code: the columns scikit-learn's HashingVectorizer gives each
 * word or char_wb n-gram of a text, without a Python string per n-gram.
 *
 * Same analysis as scikit-learn's (feature_extraction/text.py), step for step:
 *   - lowercase with str.lower() (called on the text, so Python's own case mapping);
 *   - word: tokens are the maximal runs of two or more word characters, a word character being
 *     what Python's re module calls \w (Py_UNICODE_ISALNUM or '_'), which is token_pattern
 *     r"(?u)\b\w\w+\b"; n-grams join n consecutive tokens with one space;
 *   - char_wb: words split on Python's whitespace (Py_UNICODE_ISSPACE), each padded with one space
 *     on both sides, n-grams of code points, a word shorter than n counted once;
 * then each n-gram's UTF-8 bytes are hashed with MurmurHash3_x86_32 (seed 0, signed) and mapped to
 * a column as sklearn/feature_extraction/_hashing_fast.pyx maps it. The caller sums the repeated
 * columns of a row exactly as FeatureHasher does (scipy's sum_duplicates), so the matrices are the
 * same bit for bit; tests/features/test_compiled_hashing.py compares them on arbitrary text.
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

/* A token: where its UTF-8 bytes start and end. */
typedef struct {
    Py_ssize_t start, end;
} Span;

/* Word n-grams of one lowercased text (its code points and UTF-8 bytes). */
static int word_columns(int kind, const void *chars, Py_ssize_t n_chars, const char *utf8, int min_n, int max_n,
                        int64_t n_features, Columns *out, Buffer *joined, Span **tokens, Py_ssize_t *tokens_capacity) {
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
            int32_t h;
            if (n == 1) {
                h = murmur3_32((const unsigned char *)utf8 + spans[first].start, spans[first].end - spans[first].start);
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
                h = murmur3_32(joined->data, at - joined->data);
            }
            if (columns_push(out, column_of(h, n_features)) < 0)
                return -1;
        }
    }
    return 0;
}

/* char_wb n-grams of one lowercased text. */
static int char_wb_columns(int kind, const void *chars, Py_ssize_t n_chars, const char *utf8, int min_n, int max_n,
                           int64_t n_features, Columns *out, Buffer *padded, Buffer *offsets_buffer) {
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
            if (columns_push(out, column_of(murmur3_32(bytes, offsets[end]), n_features)) < 0)
                return -1;
            while (offset + n < w_len) {
                offset++;
                int32_t h = murmur3_32(bytes + offsets[offset], offsets[offset + n] - offsets[offset]);
                if (columns_push(out, column_of(h, n_features)) < 0)
                    return -1;
            }
            if (offset == 0)
                break;
        }
    }
    return 0;
}

/* hashed_columns(texts, analyzer, min_n, max_n, n_features, lowercase) -> (indptr, indices) or None
 *
 * indptr: bytes of int64, one boundary per text plus one; indices: bytes of int32, every n-gram's
 * column in order, repeats included. None when a text is not a str or has no UTF-8 form.
 */
static PyObject *hashed_columns(PyObject *self, PyObject *args) {
    PyObject *texts;
    const char *analyzer;
    int min_n, max_n, lowercase;
    long long n_features;
    if (!PyArg_ParseTuple(args, "OsiiLp", &texts, &analyzer, &min_n, &max_n, &n_features, &lowercase))
        return NULL;
    int by_word = strcmp(analyzer, "word") == 0;
    if (!by_word && strcmp(analyzer, "char_wb") != 0) {
        PyErr_Format(PyExc_ValueError, "analyzer must be 'word' or 'char_wb', got %R", PyTuple_GET_ITEM(args, 1));
        return NULL;
    }
    if (min_n < 1 || max_n < min_n || n_features < 1 || n_features > 2147483647LL) {
        PyErr_SetString(PyExc_ValueError, "need 1 <= min_n <= max_n and 1 <= n_features < 2**31");
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
        int failed = by_word ? word_columns(kind, chars, n_chars, utf8, min_n, max_n, n_features, &columns, &first,
                                            &tokens, &tokens_capacity)
                             : char_wb_columns(kind, chars, n_chars, utf8, min_n, max_n, n_features, &columns, &first,
                                               &second);
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

static PyMethodDef methods[] = {
    {"hashed_columns", hashed_columns, METH_VARARGS,
     "hashed_columns(texts, analyzer, min_n, max_n, n_features, lowercase) -> (indptr, indices) bytes, or None\n\n"
     "The HashingVectorizer column of every word or char_wb n-gram of each text, repeats included."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ngrams", "Hashed n-gram columns in compiled code.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__ngrams(void) { return PyModule_Create(&module); }
