/* The store's optional C accelerator: record views, field reads and primary-key probes.
 *
 * Everything here has a pure-Python twin in _views.py / index.py, used when this module is not
 * built; tests run both. Arrays are numpy buffers held open for the life of the object that reads
 * them; a version's arrays are never modified, so no locking is needed. Codes are little-endian, as
 * written by _packed.py: aligned 8/16/32/64-bit integers, or bit-packed in uint64 words with one
 * spare word at the end.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    Py_buffer view;
    int held;
} Buf;

static int buf_open(PyObject *obj, Buf *b) {
    if (obj == NULL || obj == Py_None) { b->held = 0; return 0; }
    if (PyObject_GetBuffer(obj, &b->view, PyBUF_SIMPLE) < 0) return -1;
    b->held = 1;
    return 0;
}

static void buf_close(Buf *b) {
    if (b->held) { PyBuffer_Release(&b->view); b->held = 0; }
}

static inline uint64_t code_at(const char *p, int bits, Py_ssize_t i) {
    switch (bits) {
    case 8: return ((const uint8_t *)p)[i];
    case 16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case 32: { uint32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case 64: { uint64_t v; memcpy(&v, p + 8 * i, 8); return v; }
    default: {
        uint64_t bit = (uint64_t)i * (uint64_t)bits;
        size_t w = (size_t)(bit >> 6);
        unsigned s = (unsigned)(bit & 63);
        uint64_t lo, hi;
        memcpy(&lo, p + 8 * w, 8);
        memcpy(&hi, p + 8 * (w + 1), 8);
        uint64_t v = lo >> s;
        if (s) v |= hi << (64 - s);
        return v & ((1ULL << bits) - 1);
    }
    }
}

/* Checks that n codes of `bits` bits fit in the buffer, so reads below need no bounds checks. */
static int fits(Buf *b, int bits, Py_ssize_t n, const char *what) {
    if (bits < 1 || bits > 64) { PyErr_Format(PyExc_ValueError, "%s: bits must be 1..64", what); return 0; }
    Py_ssize_t need;
    if (bits == 8 || bits == 16 || bits == 32 || bits == 64) need = n * (bits / 8);
    else need = (Py_ssize_t)((((uint64_t)n * bits + 63) / 64 + 1) * 8);
    if (n > 0 && (!b->held || b->view.len < need)) {
        PyErr_Format(PyExc_ValueError, "%s: buffer holds %zd bytes, needs %zd", what,
                     b->held ? b->view.len : 0, need);
        return 0;
    }
    return 1;
}

/* --- Record: the base of every record view ------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    Py_ssize_t ordinal;
} Record;

static PyObject *Record_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    if (kw != NULL && PyDict_GET_SIZE(kw)) {
        PyErr_SetString(PyExc_TypeError, "a record view takes one argument, its ordinal");
        return NULL;
    }
    if (PyTuple_GET_SIZE(args) != 1) {
        PyErr_SetString(PyExc_TypeError, "a record view takes one argument, its ordinal");
        return NULL;
    }
    Py_ssize_t o = PyNumber_AsSsize_t(PyTuple_GET_ITEM(args, 0), PyExc_OverflowError);
    if (o == -1 && PyErr_Occurred()) return NULL;
    Record *self = (Record *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->ordinal = o;
    return (PyObject *)self;
}

static PyMemberDef Record_members[] = {
    {"_o", T_PYSSIZET, offsetof(Record, ordinal), READONLY, "the record's ordinal"},
    {NULL},
};

static PyTypeObject RecordType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "marrow.store._speedups.Record",
    .tp_basicsize = sizeof(Record),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_new = Record_new,
    .tp_members = Record_members,
    .tp_doc = "Base of record views: holds an ordinal.",
};

/* --- Field: a descriptor that reads one field of a record view --------------------------------- */

enum { K_INT, K_BOOL, K_FLOAT, K_DOUBLE, K_REF, K_DICT_STR, K_DICT_BYTES, K_VAR_STR, K_VAR_BYTES };

typedef struct {
    PyObject_HEAD
    int kind;
    Buf codes;          /* per-ordinal codes; for K_VAR_* the end offsets with the null flag on top */
    int bits;
    Py_ssize_t n;
    uint64_t null;      /* null code (K_VAR_*: the flag bit) */
    int64_t base;
    Buf ends;           /* K_DICT_*: the table's end offsets */
    int ends_bits;
    Py_ssize_t ends_n;
    Buf data;           /* K_DICT_*, K_VAR_*: the byte pool */
    PyObject *target;   /* K_REF: callable ordinal -> view */
} Field;

static void Field_dealloc(Field *self) {
    buf_close(&self->codes);
    buf_close(&self->ends);
    buf_close(&self->data);
    Py_XDECREF(self->target);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *text(int is_bytes, const char *p, uint64_t start, uint64_t end, Py_ssize_t len) {
    if (end < start || (Py_ssize_t)end > len) {
        PyErr_SetString(PyExc_ValueError, "corrupt string offsets");
        return NULL;
    }
    if (is_bytes) return PyBytes_FromStringAndSize(p + start, (Py_ssize_t)(end - start));
    return PyUnicode_DecodeUTF8(p + start, (Py_ssize_t)(end - start), "strict");
}

static PyObject *field_value(Field *f, Py_ssize_t o) {
    if (o < 0 || o >= f->n) {
        PyErr_Format(PyExc_IndexError, "ordinal %zd is outside 0..%zd", o, f->n - 1);
        return NULL;
    }
    const char *p = (const char *)f->codes.view.buf;
    uint64_t c = code_at(p, f->bits, o);
    switch (f->kind) {
    case K_INT:
        if (c == f->null) Py_RETURN_NONE;
        return PyLong_FromLongLong((long long)(c + (uint64_t)f->base));
    case K_BOOL:
        if (c == f->null) Py_RETURN_NONE;
        return PyBool_FromLong(c == 1);
    case K_FLOAT: {
        if (c == f->null) Py_RETURN_NONE;
        uint32_t u = (uint32_t)c; float x;
        memcpy(&x, &u, 4);
        return PyFloat_FromDouble((double)x);
    }
    case K_DOUBLE: {
        if (c == f->null) Py_RETURN_NONE;
        double x;
        memcpy(&x, &c, 8);
        return PyFloat_FromDouble(x);
    }
    case K_REF:
        if (c == f->null) Py_RETURN_NONE;
        {
            PyObject *arg = PyLong_FromUnsignedLongLong(c);
            if (arg == NULL) return NULL;
            PyObject *r = PyObject_CallOneArg(f->target, arg);
            Py_DECREF(arg);
            return r;
        }
    case K_DICT_STR:
    case K_DICT_BYTES: {
        if (c == f->null) Py_RETURN_NONE;
        if ((Py_ssize_t)c >= f->ends_n) {
            PyErr_SetString(PyExc_ValueError, "corrupt table id");
            return NULL;
        }
        const char *e = (const char *)f->ends.view.buf;
        uint64_t end = code_at(e, f->ends_bits, (Py_ssize_t)c);
        uint64_t start = c ? code_at(e, f->ends_bits, (Py_ssize_t)c - 1) : 0;
        return text(f->kind == K_DICT_BYTES, (const char *)f->data.view.buf, start, end,
                    f->data.held ? f->data.view.len : 0);
    }
    case K_VAR_STR:
    case K_VAR_BYTES: {
        if (c & f->null) Py_RETURN_NONE;
        uint64_t start = o ? (code_at(p, f->bits, o - 1) & (f->null - 1)) : 0;
        return text(f->kind == K_VAR_BYTES, (const char *)f->data.view.buf, start, c,
                    f->data.held ? f->data.view.len : 0);
    }
    }
    PyErr_SetString(PyExc_SystemError, "unknown field kind");
    return NULL;
}

static PyObject *Field_get(Field *self, PyObject *obj, PyObject *type) {
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return (PyObject *)self;
    }
    if (!PyObject_TypeCheck(obj, &RecordType)) {
        PyErr_SetString(PyExc_TypeError, "a field descriptor reads record views only");
        return NULL;
    }
    return field_value(self, ((Record *)obj)->ordinal);
}

static int Field_set(Field *self, PyObject *obj, PyObject *value) {
    PyErr_SetString(PyExc_AttributeError, "record views are read-only");
    return -1;
}

static PyObject *Field_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *names[] = {"kind", "codes", "bits", "n", "null", "base", "ends", "ends_bits", "ends_n", "data",
                            "target", NULL};
    int kind, bits, ends_bits = 8;
    Py_ssize_t n, ends_n = 0;
    unsigned long long null;
    long long base = 0;
    PyObject *codes, *ends = Py_None, *data = Py_None, *target = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iOinK|LOinOO", names, &kind, &codes, &bits, &n, &null, &base,
                                     &ends, &ends_bits, &ends_n, &data, &target))
        return NULL;
    if (kind < K_INT || kind > K_VAR_BYTES) {
        PyErr_SetString(PyExc_ValueError, "unknown field kind");
        return NULL;
    }
    Field *self = (Field *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->kind = kind; self->bits = bits; self->n = n; self->null = null; self->base = base;
    self->ends_bits = ends_bits; self->ends_n = ends_n;
    if (buf_open(codes, &self->codes) < 0 || buf_open(ends, &self->ends) < 0 || buf_open(data, &self->data) < 0)
        goto fail;
    if (!fits(&self->codes, bits, n, "codes")) goto fail;
    if ((kind == K_DICT_STR || kind == K_DICT_BYTES) && !fits(&self->ends, ends_bits, ends_n, "table ends")) goto fail;
    if (kind == K_REF) {
        if (!PyCallable_Check(target)) { PyErr_SetString(PyExc_TypeError, "a reference field needs a target"); goto fail; }
    }
    Py_INCREF(target);
    self->target = target;
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

/* values(ordinals) -> list: the field for many ordinals (an int64 buffer), for bulk reads. */
static PyObject *Field_values(Field *self, PyObject *arg) {
    Buf b = {0};
    if (buf_open(arg, &b) < 0) return NULL;
    Py_ssize_t count = b.view.len / 8;
    const int64_t *ords = (const int64_t *)b.view.buf;
    PyObject *out = PyList_New(count);
    if (out == NULL) { buf_close(&b); return NULL; }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *v = field_value(self, (Py_ssize_t)ords[i]);
        if (v == NULL) { Py_DECREF(out); buf_close(&b); return NULL; }
        PyList_SET_ITEM(out, i, v);
    }
    buf_close(&b);
    return out;
}

static PyMethodDef Field_methods[] = {
    {"values", (PyCFunction)Field_values, METH_O, "values(ordinals: int64 array) -> list"},
    {NULL},
};

static PyTypeObject FieldType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "marrow.store._speedups.Field",
    .tp_basicsize = sizeof(Field),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Field_new,
    .tp_dealloc = (destructor)Field_dealloc,
    .tp_descr_get = (descrgetfunc)Field_get,
    .tp_descr_set = (descrsetfunc)Field_set,
    .tp_methods = Field_methods,
    .tp_doc = "A read-only field of record views, decoded from one version's arrays.",
};

/* --- Reader: i -> code ----------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    Buf codes;
    int bits;
    Py_ssize_t n;
} Reader;

static void Reader_dealloc(Reader *self) {
    buf_close(&self->codes);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Reader_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    PyObject *codes;
    int bits;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "Oin", &codes, &bits, &n)) return NULL;
    Reader *self = (Reader *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->bits = bits; self->n = n;
    if (buf_open(codes, &self->codes) < 0 || !fits(&self->codes, bits, n, "codes")) { Py_DECREF(self); return NULL; }
    return (PyObject *)self;
}

static PyObject *Reader_call(Reader *self, PyObject *args, PyObject *kw) {
    if (PyTuple_GET_SIZE(args) != 1) { PyErr_SetString(PyExc_TypeError, "reader(i)"); return NULL; }
    Py_ssize_t i = PyNumber_AsSsize_t(PyTuple_GET_ITEM(args, 0), PyExc_OverflowError);
    if (i == -1 && PyErr_Occurred()) return NULL;
    if (i < 0 || i >= self->n) { PyErr_Format(PyExc_IndexError, "index %zd outside 0..%zd", i, self->n - 1); return NULL; }
    return PyLong_FromUnsignedLongLong(code_at((const char *)self->codes.view.buf, self->bits, i));
}

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "marrow.store._speedups.Reader",
    .tp_basicsize = sizeof(Reader),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Reader_new,
    .tp_dealloc = (destructor)Reader_dealloc,
    .tp_call = (ternaryfunc)Reader_call,
    .tp_doc = "Reader(codes, bits, n)(i) -> the i-th packed code.",
};

/* --- IntKeyProbe: primary key (one integer field) -> ordinal ----------------------------------- */

#define GOLD 0x9E3779B97F4A7C15ULL
#define EMPTY 0u
#define TOMB 0xFFFFFFFFu

typedef struct {
    PyObject_HEAD
    Buf slots;           /* uint32: ordinal + 1, 0 empty, all-ones deleted */
    Py_ssize_t size;
    Buf keys;            /* the key field's codes */
    int bits;
    Py_ssize_t n;
    int64_t base;
    uint64_t null;
    PyObject *view;      /* callable ordinal -> view, for get() */
} Probe;

static void Probe_dealloc(Probe *self) {
    buf_close(&self->slots);
    buf_close(&self->keys);
    Py_XDECREF(self->view);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Probe_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    PyObject *slots, *keys, *view;
    int bits;
    Py_ssize_t n;
    long long base;
    unsigned long long null;
    if (!PyArg_ParseTuple(args, "OOinLKO", &slots, &keys, &bits, &n, &base, &null, &view)) return NULL;
    Probe *self = (Probe *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->bits = bits; self->n = n; self->base = base; self->null = null;
    Py_INCREF(view);
    self->view = view;
    if (buf_open(slots, &self->slots) < 0 || buf_open(keys, &self->keys) < 0 || !fits(&self->keys, bits, n, "keys")) {
        Py_DECREF(self);
        return NULL;
    }
    self->size = self->slots.view.len / 4;
    if (self->size == 0) { PyErr_SetString(PyExc_ValueError, "empty slot table"); Py_DECREF(self); return NULL; }
    return (PyObject *)self;
}

static Py_ssize_t probe_find(Probe *self, PyObject *key) {
    int overflow = 0;
    long long k = PyLong_AsLongLongAndOverflow(key, &overflow);
    if (k == -1 && PyErr_Occurred()) return -2;
    if (overflow) return -1;
    const uint32_t *slots = (const uint32_t *)self->slots.view.buf;
    const char *keys = (const char *)self->keys.view.buf;
    uint64_t size = (uint64_t)self->size;
    uint64_t h = (((uint64_t)k * GOLD) >> 32) * size >> 32;
    for (uint64_t step = 0; step < size; step++) {
        uint32_t s = slots[h];
        if (s == EMPTY) return -1;
        if (s != TOMB && (Py_ssize_t)(s - 1) < self->n) {
            uint64_t c = code_at(keys, self->bits, (Py_ssize_t)(s - 1));
            if (c != self->null && (long long)(c + (uint64_t)self->base) == k) return (Py_ssize_t)(s - 1);
        }
        if (++h == size) h = 0;
    }
    return -1;
}

static PyObject *Probe_find(Probe *self, PyObject *key) {
    if (!PyLong_Check(key)) {
        if (PyFloat_Check(key) || PyUnicode_Check(key) || PyBytes_Check(key)) return PyLong_FromLong(-1);
        key = PyNumber_Index(key);
        if (key == NULL) return NULL;
        Py_ssize_t o = probe_find(self, key);
        Py_DECREF(key);
        return o == -2 ? NULL : PyLong_FromSsize_t(o);
    }
    Py_ssize_t o = probe_find(self, key);
    return o == -2 ? NULL : PyLong_FromSsize_t(o);
}

static PyObject *Probe_get(Probe *self, PyObject *key) {
    if (!PyLong_Check(key)) {
        PyObject *o = Probe_find(self, key);
        if (o == NULL) return NULL;
        Py_ssize_t v = PyLong_AsSsize_t(o);
        if (v < 0) { Py_DECREF(o); Py_RETURN_NONE; }
        PyObject *r = PyObject_CallOneArg(self->view, o);
        Py_DECREF(o);
        return r;
    }
    Py_ssize_t o = probe_find(self, key);
    if (o == -2) return NULL;
    if (o < 0) Py_RETURN_NONE;
    PyObject *arg = PyLong_FromSsize_t(o);
    if (arg == NULL) return NULL;
    PyObject *r = PyObject_CallOneArg(self->view, arg);
    Py_DECREF(arg);
    return r;
}

static PyMethodDef Probe_methods[] = {
    {"find", (PyCFunction)Probe_find, METH_O, "find(key) -> ordinal, or -1"},
    {"get", (PyCFunction)Probe_get, METH_O, "get(key) -> view, or None"},
    {NULL},
};

static PyTypeObject ProbeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "marrow.store._speedups.IntKeyProbe",
    .tp_basicsize = sizeof(Probe),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Probe_new,
    .tp_dealloc = (destructor)Probe_dealloc,
    .tp_methods = Probe_methods,
    .tp_doc = "IntKeyProbe(slots, keys, bits, n, base, null, view): integer primary key lookups.",
};


/* --- bulk helpers for building versions ----------------------------------------------------- */

static int open_out(PyObject *obj, Buf *b) {
    if (PyObject_GetBuffer(obj, &b->view, PyBUF_SIMPLE | PyBUF_WRITABLE) < 0) return -1;
    b->held = 1;
    return 0;
}

/* unpack(words, bits, n, out): out[i] = code i, for a bit-packed array; out is a uint64 buffer. */
static PyObject *py_unpack(PyObject *self, PyObject *args) {
    PyObject *src, *dst;
    int bits;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OinO", &src, &bits, &n, &dst)) return NULL;
    Buf in = {0}, out = {0};
    if (buf_open(src, &in) < 0) return NULL;
    if (!fits(&in, bits, n, "unpack") || open_out(dst, &out) < 0) { buf_close(&in); return NULL; }
    if (out.view.len < n * 8) {
        PyErr_SetString(PyExc_ValueError, "unpack: output too small");
    } else {
        const char *p = (const char *)in.view.buf;
        uint64_t *o = (uint64_t *)out.view.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) o[i] = code_at(p, bits, i);
        Py_END_ALLOW_THREADS
    }
    buf_close(&in); buf_close(&out);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* pack(codes, bits, out): lay uint64 codes end to end in `bits` bits into zeroed uint64 words. */
static PyObject *py_pack(PyObject *self, PyObject *args) {
    PyObject *src, *dst;
    int bits;
    if (!PyArg_ParseTuple(args, "OiO", &src, &bits, &dst)) return NULL;
    if (bits < 1 || bits > 64) { PyErr_SetString(PyExc_ValueError, "pack: bits must be 1..64"); return NULL; }
    Buf in = {0}, out = {0};
    if (buf_open(src, &in) < 0) return NULL;
    if (open_out(dst, &out) < 0) { buf_close(&in); return NULL; }
    Py_ssize_t n = in.view.len / 8;
    Py_ssize_t words = (Py_ssize_t)(((uint64_t)n * bits + 63) / 64 + 1);
    if (out.view.len < words * 8) {
        PyErr_SetString(PyExc_ValueError, "pack: output too small");
    } else {
        const uint64_t *c = (const uint64_t *)in.view.buf;
        uint64_t *w = (uint64_t *)out.view.buf;
        uint64_t mask = bits == 64 ? ~0ULL : ((1ULL << bits) - 1);
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t v = c[i] & mask;
            uint64_t bit = (uint64_t)i * (uint64_t)bits;
            size_t k = (size_t)(bit >> 6);
            unsigned s = (unsigned)(bit & 63);
            w[k] |= v << s;
            if (s && s + (unsigned)bits > 64) w[k + 1] |= v >> (64 - s);
        }
        Py_END_ALLOW_THREADS
    }
    buf_close(&in); buf_close(&out);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* splice(old, new, starts, ends, from_new, out): concatenate segments [starts[i], ends[i]) of old or
 * new (by element, of the arrays' common item size) into out; returns the elements written. */
static PyObject *py_splice(PyObject *self, PyObject *args) {
    PyObject *o_obj, *n_obj, *a_obj, *b_obj, *f_obj, *out_obj;
    Py_ssize_t item;
    if (!PyArg_ParseTuple(args, "OOOOOOn", &o_obj, &n_obj, &a_obj, &b_obj, &f_obj, &out_obj, &item)) return NULL;
    Buf old = {0}, nw = {0}, a = {0}, b = {0}, f = {0}, out = {0};
    Py_ssize_t written = 0;
    if (buf_open(o_obj, &old) < 0 || buf_open(n_obj, &nw) < 0 || buf_open(a_obj, &a) < 0 ||
        buf_open(b_obj, &b) < 0 || buf_open(f_obj, &f) < 0 || open_out(out_obj, &out) < 0)
        goto done;
    if (item < 1 || a.view.len != b.view.len || a.view.len / 8 != f.view.len) {
        PyErr_SetString(PyExc_ValueError, "splice: mismatched arguments");
        goto done;
    }
    {
        Py_ssize_t segs = a.view.len / 8;
        const int64_t *as = (const int64_t *)a.view.buf, *bs = (const int64_t *)b.view.buf;
        const uint8_t *fs = (const uint8_t *)f.view.buf;
        char *dst = (char *)out.view.buf;
        Py_ssize_t cap = out.view.len / item;
        for (Py_ssize_t i = 0; i < segs; i++) {
            Buf *src = fs[i] ? &nw : &old;
            Py_ssize_t len = (Py_ssize_t)(bs[i] - as[i]);
            if (len <= 0) continue;
            Py_ssize_t have = src->held ? src->view.len / item : 0;
            if (as[i] < 0 || bs[i] > have || written + len > cap) {
                PyErr_SetString(PyExc_ValueError, "splice: segment out of range");
                goto done;
            }
            memcpy(dst + written * item, (const char *)src->view.buf + as[i] * item, (size_t)(len * item));
            written += len;
        }
    }
done:
    buf_close(&old); buf_close(&nw); buf_close(&a); buf_close(&b); buf_close(&f); buf_close(&out);
    if (PyErr_Occurred()) return NULL;
    return PyLong_FromSsize_t(written);
}

static PyMethodDef module_methods[] = {
    {"unpack", py_unpack, METH_VARARGS, "unpack(words, bits, n, out)"},
    {"pack", py_pack, METH_VARARGS, "pack(codes, bits, out)"},
    {"splice", py_splice, METH_VARARGS, "splice(old, new, starts, ends, from_new, out, itemsize) -> count"},
    {NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "marrow.store._speedups", "C accelerator for marrow.store read paths.", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    if (PyType_Ready(&RecordType) < 0 || PyType_Ready(&FieldType) < 0 || PyType_Ready(&ReaderType) < 0 ||
        PyType_Ready(&ProbeType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Record", (PyObject *)&RecordType) < 0 ||
        PyModule_AddObjectRef(m, "Field", (PyObject *)&FieldType) < 0 ||
        PyModule_AddObjectRef(m, "Reader", (PyObject *)&ReaderType) < 0 ||
        PyModule_AddObjectRef(m, "IntKeyProbe", (PyObject *)&ProbeType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "K_INT", K_INT);
    PyModule_AddIntConstant(m, "K_BOOL", K_BOOL);
    PyModule_AddIntConstant(m, "K_FLOAT", K_FLOAT);
    PyModule_AddIntConstant(m, "K_DOUBLE", K_DOUBLE);
    PyModule_AddIntConstant(m, "K_REF", K_REF);
    PyModule_AddIntConstant(m, "K_DICT_STR", K_DICT_STR);
    PyModule_AddIntConstant(m, "K_DICT_BYTES", K_DICT_BYTES);
    PyModule_AddIntConstant(m, "K_VAR_STR", K_VAR_STR);
    PyModule_AddIntConstant(m, "K_VAR_BYTES", K_VAR_BYTES);
    return m;
}
