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
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#include <errno.h>
#define HAVE_MADVISE 1
#endif

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

/* Code i of a possibly strided array: it starts at bit i * stride + offset (a shared row layout);
 * stride == bits and offset == 0 is an array of its own, read by code_at. */
static inline uint64_t code_get(const char *p, int bits, uint64_t stride, uint64_t offset, Py_ssize_t i) {
    if (offset == 0 && stride == (uint64_t)bits) return code_at(p, bits, i);
    uint64_t bit = (uint64_t)i * stride + offset;
    size_t w = (size_t)(bit >> 6);
    unsigned s = (unsigned)(bit & 63);
    uint64_t lo, hi;
    memcpy(&lo, p + 8 * w, 8);
    memcpy(&hi, p + 8 * (w + 1), 8);
    uint64_t v = lo >> s;
    if (s) v |= hi << (64 - s);
    return bits == 64 ? v : (v & ((1ULL << bits) - 1));
}

/* Checks that n codes of `bits` bits (at stride and offset) fit in the buffer, so reads need no
 * bounds checks. */
static int fits_strided(Buf *b, int bits, Py_ssize_t n, uint64_t stride, uint64_t offset, const char *what) {
    if (bits < 1 || bits > 64) { PyErr_Format(PyExc_ValueError, "%s: bits must be 1..64", what); return 0; }
    Py_ssize_t need;
    if (offset == 0 && stride == (uint64_t)bits && (bits == 8 || bits == 16 || bits == 32 || bits == 64))
        need = n * (bits / 8);
    else if (n == 0) need = 0;
    else need = (Py_ssize_t)((((uint64_t)(n - 1) * stride + offset + bits + 63) / 64 + 1) * 8);
    if (n > 0 && (!b->held || b->view.len < need)) {
        PyErr_Format(PyExc_ValueError, "%s: buffer holds %zd bytes, needs %zd", what,
                     b->held ? b->view.len : 0, need);
        return 0;
    }
    return 1;
}

static int fits(Buf *b, int bits, Py_ssize_t n, const char *what) {
    return fits_strided(b, bits, n, (uint64_t)bits, 0, what);
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

/* A view of `cls` at ordinal o: allocated directly when cls is a record class (no argument tuple),
 * otherwise by calling it. */
static PyObject *make_view(PyObject *cls, Py_ssize_t o) {
    if (PyType_Check(cls) && PyType_IsSubtype((PyTypeObject *)cls, &RecordType) &&
        ((PyTypeObject *)cls)->tp_new == Record_new) {
        PyTypeObject *t = (PyTypeObject *)cls;
        Record *r = (Record *)t->tp_alloc(t, 0);
        if (r == NULL) return NULL;
        r->ordinal = o;
        return (PyObject *)r;
    }
    PyObject *arg = PyLong_FromSsize_t(o);
    if (arg == NULL) return NULL;
    PyObject *r = PyObject_CallOneArg(cls, arg);
    Py_DECREF(arg);
    return r;
}

/* --- Field: a descriptor that reads one field of a record view --------------------------------- */

enum { K_INT, K_BOOL, K_FLOAT, K_DOUBLE, K_REF, K_DICT_STR, K_DICT_BYTES, K_VAR_STR, K_VAR_BYTES };

typedef struct {
    PyObject_HEAD
    int kind;
    Buf codes;          /* per-ordinal codes; for K_VAR_* the end offsets with the null flag on top */
    int bits;
    uint64_t stride, offset;  /* where code i starts: bit i * stride + offset */
    Py_ssize_t n;
    uint64_t null;      /* null code (K_VAR_*: the flag bit) */
    int64_t base;
    Buf ends;           /* K_DICT_*: the table's end offsets */
    int ends_bits;
    Py_ssize_t ends_n;
    Buf data;           /* K_DICT_*, K_VAR_*: the byte pool */
    PyObject *target;   /* K_REF: callable ordinal -> view */
    Buf syms;           /* compressed strings: 255 uint64 symbols */
    Buf lens;           /* and their 255 lengths; not held when strings are stored plain */
} Field;

/* Field and IntKeyProbe hold a view class, which leads back through its reader and the state to
 * them: a cycle that only the garbage collector can free, so both types take part in it. Without
 * this every version whose references or primary key were read stayed in memory for good. */
static int Field_traverse(Field *self, visitproc visit, void *arg) {
    Py_VISIT(self->target);
    return 0;
}

static int Field_clear(Field *self) {
    Py_CLEAR(self->target);
    return 0;
}

static void Field_dealloc(Field *self) {
    PyObject_GC_UnTrack(self);
    buf_close(&self->codes);
    buf_close(&self->ends);
    buf_close(&self->data);
    buf_close(&self->syms);
    buf_close(&self->lens);
    Py_XDECREF(self->target);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *decoded_text(const uint64_t *syms, const uint8_t *lens, const uint8_t *p, Py_ssize_t len, int is_bytes);

static PyObject *field_text(Field *f, int is_bytes, uint64_t start, uint64_t end) {
    Py_ssize_t len = f->data.held ? f->data.view.len : 0;
    if (end < start || (Py_ssize_t)end > len) {
        PyErr_SetString(PyExc_ValueError, "corrupt string offsets");
        return NULL;
    }
    const char *p = (const char *)f->data.view.buf;
    if (f->syms.held)
        return decoded_text((const uint64_t *)f->syms.view.buf, (const uint8_t *)f->lens.view.buf,
                            (const uint8_t *)p + start, (Py_ssize_t)(end - start), is_bytes);
    if (is_bytes) return PyBytes_FromStringAndSize(p + start, (Py_ssize_t)(end - start));
    return PyUnicode_DecodeUTF8(p + start, (Py_ssize_t)(end - start), "strict");
}

static PyObject *field_value(Field *f, Py_ssize_t o) {
    if (o < 0 || o >= f->n) {
        PyErr_Format(PyExc_IndexError, "ordinal %zd is outside 0..%zd", o, f->n - 1);
        return NULL;
    }
    const char *p = (const char *)f->codes.view.buf;
    uint64_t c = code_get(p, f->bits, f->stride, f->offset, o);
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
        if (f->target == NULL) { PyErr_SetString(PyExc_RuntimeError, "field of a freed version"); return NULL; }
        return make_view(f->target, (Py_ssize_t)c);
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
        return field_text(f, f->kind == K_DICT_BYTES, start, end);
    }
    case K_VAR_STR:
    case K_VAR_BYTES: {
        if (c & f->null) Py_RETURN_NONE;
        uint64_t start = o ? (code_get(p, f->bits, f->stride, f->offset, o - 1) & (f->null - 1)) : 0;
        return field_text(f, f->kind == K_VAR_BYTES, start, c);
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
                            "target", "symbols", "lengths", "stride", "offset", NULL};
    int kind, bits, ends_bits = 8;
    Py_ssize_t n, ends_n = 0;
    unsigned long long null;
    long long base = 0;
    PyObject *codes, *ends = Py_None, *data = Py_None, *target = Py_None, *syms = Py_None, *lens = Py_None;
    unsigned long long stride = 0, offset = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iOinK|LOinOOOOKK", names, &kind, &codes, &bits, &n, &null, &base,
                                     &ends, &ends_bits, &ends_n, &data, &target, &syms, &lens, &stride, &offset))
        return NULL;
    if (kind < K_INT || kind > K_VAR_BYTES) {
        PyErr_SetString(PyExc_ValueError, "unknown field kind");
        return NULL;
    }
    Field *self = (Field *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->kind = kind; self->bits = bits; self->n = n; self->null = null; self->base = base;
    self->stride = stride ? stride : (uint64_t)bits; self->offset = offset;
    self->ends_bits = ends_bits; self->ends_n = ends_n;
    if (buf_open(codes, &self->codes) < 0 || buf_open(ends, &self->ends) < 0 || buf_open(data, &self->data) < 0 ||
        buf_open(syms, &self->syms) < 0 || buf_open(lens, &self->lens) < 0)
        goto fail;
    if (self->syms.held && (self->syms.view.len < 255 * 8 || !self->lens.held || self->lens.view.len < 255)) {
        PyErr_SetString(PyExc_ValueError, "a symbol table has 255 symbols and 255 lengths");
        goto fail;
    }
    if (!fits_strided(&self->codes, bits, n, self->stride, self->offset, "codes")) goto fail;
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
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Field_traverse,
    .tp_clear = (inquiry)Field_clear,
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
    uint64_t stride, offset;
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
    unsigned long long stride = 0, offset = 0;
    if (!PyArg_ParseTuple(args, "Oin|KK", &codes, &bits, &n, &stride, &offset)) return NULL;
    Reader *self = (Reader *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->bits = bits; self->n = n; self->stride = stride ? stride : (uint64_t)bits; self->offset = offset;
    if (buf_open(codes, &self->codes) < 0 || !fits_strided(&self->codes, bits, n, self->stride, offset, "codes")) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static PyObject *Reader_call(Reader *self, PyObject *args, PyObject *kw) {
    if (PyTuple_GET_SIZE(args) != 1) { PyErr_SetString(PyExc_TypeError, "reader(i)"); return NULL; }
    Py_ssize_t i = PyNumber_AsSsize_t(PyTuple_GET_ITEM(args, 0), PyExc_OverflowError);
    if (i == -1 && PyErr_Occurred()) return NULL;
    if (i < 0 || i >= self->n) { PyErr_Format(PyExc_IndexError, "index %zd outside 0..%zd", i, self->n - 1); return NULL; }
    return PyLong_FromUnsignedLongLong(code_get((const char *)self->codes.view.buf, self->bits, self->stride, self->offset, i));
}

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "marrow.store._speedups.Reader",
    .tp_basicsize = sizeof(Reader),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Reader_new,
    .tp_dealloc = (destructor)Reader_dealloc,
    .tp_call = (ternaryfunc)Reader_call,
    .tp_doc = "Reader(codes, bits, n, stride=bits, offset=0)(i) -> the i-th packed code.",
};

/* --- IntKeyProbe: primary key (one integer field) -> ordinal ----------------------------------- */

#define GOLD 0x9E3779B97F4A7C15ULL
#define EMPTY 0u

typedef struct {
    PyObject_HEAD
    Buf slots;           /* packed: ordinal + 1, 0 empty, all-ones deleted */
    int slot_bits;
    uint64_t tomb;
    Py_ssize_t size;
    Buf keys;            /* the key field's codes */
    int bits;
    uint64_t stride, offset;
    Py_ssize_t n;
    int64_t base;
    uint64_t null;
    PyObject *view;      /* callable ordinal -> view, for get() */
} Probe;

static int Probe_traverse(Probe *self, visitproc visit, void *arg) {
    Py_VISIT(self->view);
    return 0;
}

static int Probe_clear(Probe *self) {
    Py_CLEAR(self->view);
    return 0;
}

static void Probe_dealloc(Probe *self) {
    PyObject_GC_UnTrack(self);
    buf_close(&self->slots);
    buf_close(&self->keys);
    Py_XDECREF(self->view);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Probe_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    PyObject *slots, *keys, *view;
    int bits, slot_bits;
    Py_ssize_t n, size;
    long long base;
    unsigned long long null;
    unsigned long long stride = 0, offset = 0;
    if (!PyArg_ParseTuple(args, "OinOinLKO|KK", &slots, &slot_bits, &size, &keys, &bits, &n, &base, &null, &view,
                          &stride, &offset))
        return NULL;
    Probe *self = (Probe *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->bits = bits; self->n = n; self->base = base; self->null = null;
    self->slot_bits = slot_bits; self->size = size;
    self->stride = stride ? stride : (uint64_t)bits; self->offset = offset;
    self->tomb = slot_bits >= 64 ? ~0ULL : ((1ULL << slot_bits) - 1);
    Py_INCREF(view);
    self->view = view;
    if (buf_open(slots, &self->slots) < 0 || buf_open(keys, &self->keys) < 0 ||
        !fits_strided(&self->keys, bits, n, self->stride, self->offset, "keys") ||
        !fits(&self->slots, slot_bits, size, "slots")) {
        Py_DECREF(self);
        return NULL;
    }
    if (self->size == 0) { PyErr_SetString(PyExc_ValueError, "empty slot table"); Py_DECREF(self); return NULL; }
    return (PyObject *)self;
}

static Py_ssize_t probe_find(Probe *self, PyObject *key) {
    int overflow = 0;
    long long k = PyLong_AsLongLongAndOverflow(key, &overflow);
    if (k == -1 && PyErr_Occurred()) return -2;
    if (overflow) return -1;
    const char *slots = (const char *)self->slots.view.buf;
    const char *keys = (const char *)self->keys.view.buf;
    uint64_t size = (uint64_t)self->size;
    uint64_t h = (((uint64_t)k * GOLD) >> 32) * size >> 32;
    for (uint64_t step = 0; step < size; step++) {
        uint64_t s = code_at(slots, self->slot_bits, (Py_ssize_t)h);
        if (s == EMPTY) return -1;
        if (s != self->tomb && (Py_ssize_t)(s - 1) < self->n) {
            uint64_t c = code_get(keys, self->bits, self->stride, self->offset, (Py_ssize_t)(s - 1));
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
        if (self->view == NULL) {
            Py_DECREF(o);
            PyErr_SetString(PyExc_RuntimeError, "index of a freed version");
            return NULL;
        }
        PyObject *r = PyObject_CallOneArg(self->view, o);
        Py_DECREF(o);
        return r;
    }
    Py_ssize_t o = probe_find(self, key);
    if (o == -2) return NULL;
    if (o < 0) Py_RETURN_NONE;
    if (self->view == NULL) { PyErr_SetString(PyExc_RuntimeError, "index of a freed version"); return NULL; }
    return make_view(self->view, o);
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
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Probe_traverse,
    .tp_clear = (inquiry)Probe_clear,
    .tp_new = Probe_new,
    .tp_dealloc = (destructor)Probe_dealloc,
    .tp_methods = Probe_methods,
    .tp_doc = "IntKeyProbe(slots, slot_bits, size, keys, bits, n, base, null, view): integer key lookups.",
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
    unsigned long long stride = 0, offset = 0;
    if (!PyArg_ParseTuple(args, "OinO|KK", &src, &bits, &n, &dst, &stride, &offset)) return NULL;
    if (!stride) stride = (uint64_t)bits;
    Buf in = {0}, out = {0};
    if (buf_open(src, &in) < 0) return NULL;
    if (!fits_strided(&in, bits, n, stride, offset, "unpack") || open_out(dst, &out) < 0) { buf_close(&in); return NULL; }
    if (out.view.len < n * 8) {
        PyErr_SetString(PyExc_ValueError, "unpack: output too small");
    } else {
        const char *p = (const char *)in.view.buf;
        uint64_t *o = (uint64_t *)out.view.buf;
        Py_BEGIN_ALLOW_THREADS
        if (offset == 0 && stride == (uint64_t)bits && (bits == 8 || bits == 16 || bits == 32 || bits == 64)) {
            for (Py_ssize_t i = 0; i < n; i++) o[i] = code_at(p, bits, i);
        } else {
            /* a running bit cursor: no multiply, and whole-word loads */
            const uint64_t mask = bits == 64 ? ~0ULL : ((1ULL << bits) - 1);
            uint64_t bit = offset;
            for (Py_ssize_t i = 0; i < n; i++, bit += stride) {
                size_t w = (size_t)(bit >> 6);
                unsigned s = (unsigned)(bit & 63);
                uint64_t lo, hi;
                memcpy(&lo, p + 8 * w, 8);
                uint64_t v = lo >> s;
                if (s + (unsigned)bits > 64) {
                    memcpy(&hi, p + 8 * (w + 1), 8);
                    v |= hi << (64 - s);
                }
                o[i] = v & mask;
            }
        }
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
    unsigned long long stride = 0, offset = 0;
    if (!PyArg_ParseTuple(args, "OiO|KK", &src, &bits, &dst, &stride, &offset)) return NULL;
    if (!stride) stride = (uint64_t)bits;
    if (bits < 1 || bits > 64) { PyErr_SetString(PyExc_ValueError, "pack: bits must be 1..64"); return NULL; }
    Buf in = {0}, out = {0};
    if (buf_open(src, &in) < 0) return NULL;
    if (open_out(dst, &out) < 0) { buf_close(&in); return NULL; }
    Py_ssize_t n = in.view.len / 8;
    Py_ssize_t words = n ? (Py_ssize_t)((((uint64_t)(n - 1) * stride + offset + bits + 63) / 64) + 1) : 0;
    if (out.view.len < words * 8) {
        PyErr_SetString(PyExc_ValueError, "pack: output too small");
    } else {
        const uint64_t *c = (const uint64_t *)in.view.buf;
        uint64_t *w = (uint64_t *)out.view.buf;
        uint64_t mask = bits == 64 ? ~0ULL : ((1ULL << bits) - 1);
        Py_BEGIN_ALLOW_THREADS
        uint64_t bit = offset;
        for (Py_ssize_t i = 0; i < n; i++, bit += stride) {
            uint64_t v = c[i] & mask;
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

/* Writes code v (already masked) at bit position `bit` of words, clearing its old bits. */
static inline void set_code(uint64_t *w, int bits, uint64_t mask, uint64_t bit, uint64_t v) {
    size_t q = (size_t)(bit >> 6);
    unsigned s = (unsigned)(bit & 63);
    w[q] = (w[q] & ~(mask << s)) | (v << s);
    if (s && s + (unsigned)bits > 64) w[q + 1] = (w[q + 1] & ~(mask >> (64 - s))) | (v >> (64 - s));
}

/* put(words, codes, bits, stride, offset, index=None): overwrite codes in bit-packed (possibly
 * strided) words, clearing each code's bits first: code k goes to position index[k] (int64), or to
 * position k when index is None. The words of a new version, copied from the old, before anyone
 * reads them. */
static PyObject *py_put(PyObject *self, PyObject *args) {
    PyObject *dst, *src, *idx_obj = Py_None;
    int bits;
    unsigned long long stride, offset;
    if (!PyArg_ParseTuple(args, "OOiKK|O", &dst, &src, &bits, &stride, &offset, &idx_obj)) return NULL;
    if (bits < 1 || bits > 64 || stride < (unsigned long long)bits) {
        PyErr_SetString(PyExc_ValueError, "put: bits must be 1..64 and at most stride");
        return NULL;
    }
    Buf out = {0}, in = {0}, ix = {0};
    if (open_out(dst, &out) < 0) return NULL;
    if (buf_open(src, &in) < 0 || buf_open(idx_obj, &ix) < 0) goto done;
    {
        Py_ssize_t n = in.held ? in.view.len / 8 : 0;
        if (ix.held && ix.view.len / 8 != n) {
            PyErr_SetString(PyExc_ValueError, "put: index and codes differ in length");
            goto done;
        }
        const uint64_t *c = (const uint64_t *)in.view.buf;
        const int64_t *at = ix.held ? (const int64_t *)ix.view.buf : NULL;
        uint64_t *w = (uint64_t *)out.view.buf;
        const uint64_t words = (uint64_t)(out.view.len / 8);
        const uint64_t mask = bits == 64 ? ~0ULL : ((1ULL << bits) - 1);
        int bad = 0;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t k = 0; k < n; k++) {
            int64_t i = at ? at[k] : (int64_t)k;
            if (i < 0) { bad = 1; break; }
            uint64_t bit = (uint64_t)i * stride + offset;
            if ((bit >> 6) + 1 >= words) { bad = 1; break; }  /* every array keeps one spare word */
            set_code(w, bits, mask, bit, c[k] & mask);
        }
        Py_END_ALLOW_THREADS
        if (bad) PyErr_SetString(PyExc_ValueError, "put: a position lies outside the words");
    }
done:
    buf_close(&out); buf_close(&in); buf_close(&ix);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* shift(words, bits, stride, offset, starts, stops, amounts): add amounts[j] (int64, mod 2**bits)
 * to the codes at positions starts[j] .. stops[j] - 1 of bit-packed (possibly strided) words, in
 * place: the end offsets of the rows after a changed one, moved by the bytes it gained or lost. */
static PyObject *py_shift(PyObject *self, PyObject *args) {
    PyObject *dst, *s_obj, *e_obj, *a_obj;
    int bits;
    unsigned long long stride, offset;
    if (!PyArg_ParseTuple(args, "OiKKOOO", &dst, &bits, &stride, &offset, &s_obj, &e_obj, &a_obj)) return NULL;
    if (bits < 1 || bits > 64 || stride < (unsigned long long)bits) {
        PyErr_SetString(PyExc_ValueError, "shift: bits must be 1..64 and at most stride");
        return NULL;
    }
    Buf out = {0}, st = {0}, en = {0}, am = {0};
    if (open_out(dst, &out) < 0) return NULL;
    if (buf_open(s_obj, &st) < 0 || buf_open(e_obj, &en) < 0 || buf_open(a_obj, &am) < 0) goto done;
    {
        Py_ssize_t runs = st.held ? st.view.len / 8 : 0;
        if ((en.held ? en.view.len / 8 : 0) != runs || (am.held ? am.view.len / 8 : 0) != runs) {
            PyErr_SetString(PyExc_ValueError, "shift: starts, stops and amounts differ in length");
            goto done;
        }
        const int64_t *ss = (const int64_t *)st.view.buf, *es = (const int64_t *)en.view.buf;
        const int64_t *as = (const int64_t *)am.view.buf;
        uint64_t *w = (uint64_t *)out.view.buf;
        const uint64_t words = (uint64_t)(out.view.len / 8);
        const uint64_t mask = bits == 64 ? ~0ULL : ((1ULL << bits) - 1);
        int bad = 0;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = 0; j < runs && !bad; j++) {
            if (ss[j] < 0 || es[j] < ss[j]) { bad = 1; break; }
            if (es[j] > ss[j] && ((uint64_t)(es[j] - 1) * stride + offset) / 64 + 1 >= words) { bad = 1; break; }
            const uint64_t add = (uint64_t)as[j];
            uint64_t bit = (uint64_t)ss[j] * stride + offset;
            for (int64_t i = ss[j]; i < es[j]; i++, bit += stride) {
                set_code(w, bits, mask, bit, (code_get((const char *)w, bits, stride, offset, i) + add) & mask);
            }
        }
        Py_END_ALLOW_THREADS
        if (bad) PyErr_SetString(PyExc_ValueError, "shift: a run lies outside the words");
    }
done:
    buf_close(&out); buf_close(&st); buf_close(&en); buf_close(&am);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* CRC-32 (the polynomial and bit order of zlib.crc32), eight bytes a step ("slicing by 8"). */
static uint32_t crc_tables[8][256];

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_tables[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int t = 1; t < 8; t++)
            crc_tables[t][n] = (crc_tables[t - 1][n] >> 8) ^ crc_tables[0][crc_tables[t - 1][n] & 0xFF];
}

static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n) {
    crc = ~crc;
    while (n && ((uintptr_t)p & 7)) { crc = crc_tables[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8); n--; }
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= crc;
        crc = crc_tables[7][lo & 0xFF] ^ crc_tables[6][(lo >> 8) & 0xFF] ^ crc_tables[5][(lo >> 16) & 0xFF] ^
              crc_tables[4][lo >> 24] ^ crc_tables[3][hi & 0xFF] ^ crc_tables[2][(hi >> 8) & 0xFF] ^
              crc_tables[1][(hi >> 16) & 0xFF] ^ crc_tables[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) crc = crc_tables[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_CLMUL_CRC 1
/* CRC-32 by carry-less multiplication (Intel, "Fast CRC Computation for Generic Polynomials Using
 * PCLMULQDQ", 2009): four 16-byte lanes are folded forward 64 bytes a step, then into one lane; that
 * lane is congruent to the whole input modulo the polynomial, so its CRC, computed by the table from a
 * zero register, is the input's. 5x the table's speed here (45 MB: 8 ms, not 40); used where the CPU has it.
 * `reg` is the raw CRC register (not inverted); n >= 64. Returns the register after the whole 64-byte
 * multiples; *done says how many bytes that was. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t clmul_fold(uint32_t reg, const uint8_t *p, size_t n,
                                                                    size_t *done) {
    const __m128i k512 = _mm_set_epi64x(0x1c6e41596LL, 0x154442bd4LL); /* folds 512 bits forward */
    const __m128i k128 = _mm_set_epi64x(0x0ccaa009eLL, 0x1751997d0LL); /* folds 128 bits forward */
    __m128i x0 = _mm_loadu_si128((const __m128i *)p), x1 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 32)), x3 = _mm_loadu_si128((const __m128i *)(p + 48));
    x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)reg));
    size_t at = 64;
#define FOLD(x, k, next) \
    _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next)
    for (; n - at >= 64; at += 64) {
        x0 = FOLD(x0, k512, _mm_loadu_si128((const __m128i *)(p + at)));
        x1 = FOLD(x1, k512, _mm_loadu_si128((const __m128i *)(p + at + 16)));
        x2 = FOLD(x2, k512, _mm_loadu_si128((const __m128i *)(p + at + 32)));
        x3 = FOLD(x3, k512, _mm_loadu_si128((const __m128i *)(p + at + 48)));
    }
    x0 = FOLD(FOLD(FOLD(x0, k128, x1), k128, x2), k128, x3);
#undef FOLD
    uint8_t lane[16];
    _mm_storeu_si128((__m128i *)lane, x0);
    *done = at;
    return ~crc_update(0xFFFFFFFFu, lane, 16); /* crc_update inverts on the way in and out */
}

static int clmul_usable = 0; /* set once at import, from the CPU's flags */
#endif

/* CRC-32 of n bytes, continuing `crc` (zlib.crc32's convention), by the fastest means at hand. */
static uint32_t crc_fast(uint32_t crc, const uint8_t *p, size_t n) {
#ifdef HAVE_CLMUL_CRC
    if (clmul_usable && n >= 64) {
        size_t done;
        uint32_t reg = clmul_fold(~crc, p, n, &done);
        return crc_update(~reg, p + done, n - done);
    }
#endif
    return crc_update(crc, p, n);
}

/* crc32(buffer, end, chunk=0, advice=-1, pause_us=0): CRC-32 of bytes [0, end) of a buffer, equal to
 * zlib.crc32, in one call with the GIL released. With advice >= 0 (a memory-mapped file), each chunk
 * of `chunk` bytes is given to madvise(2) with it once checked (MADV_DONTNEED: not left resident).
 * With pause_us > 0, the thread sleeps that long after each chunk: a thread that shares a core with
 * it then waits at most a chunk's time, not the scheduler's tick. One call, so that a checking thread
 * does not take the GIL back from reader threads once per chunk. */
static PyObject *py_crc32(PyObject *self, PyObject *args) {
    PyObject *obj;
    Py_ssize_t end, chunk = 0;
    int advice = -1, pause_us = 0;
    if (!PyArg_ParseTuple(args, "On|nii", &obj, &end, &chunk, &advice, &pause_us)) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) return NULL;
    if (end < 0 || end > view.len || chunk < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "crc32: range outside the buffer");
        return NULL;
    }
    uint32_t crc = 0;
    int rc = 0, err = 0;
    Py_BEGIN_ALLOW_THREADS
    const uint8_t *base = (const uint8_t *)view.buf;
    Py_ssize_t step = chunk > 0 ? chunk : (end > 0 ? end : 1);
    for (Py_ssize_t at = 0; at < end && rc == 0; at += step) {
        Py_ssize_t n = end - at < step ? end - at : step;
        crc = crc_fast(crc, base + at, (size_t)n);
#ifdef HAVE_MADVISE
        if (advice >= 0) {
            const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
            uintptr_t first = ((uintptr_t)(base + at) + page - 1) & ~(page - 1);
            uintptr_t last = (uintptr_t)(base + at + n); /* madvise rounds the length up to a page */
            if (last > first && madvise((void *)first, (size_t)(last - first), advice) != 0) {
                rc = -1;
                err = errno;
            }
        }
        if (pause_us > 0 && at + step < end) usleep((useconds_t)pause_us);
#endif
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (rc != 0) {
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromUnsignedLong(crc);
}

#ifdef HAVE_MADVISE
/* madvise(buffer, start, length, advice): madvise(2) on the whole pages of bytes [start, start + length)
 * of a buffer (a memory-mapped file), with the GIL released: mmap.madvise holds it, and dropping the
 * pages of a version (tens of megabytes) takes a millisecond or more that readers would wait. */
static PyObject *py_madvise(PyObject *self, PyObject *args) {
    PyObject *obj;
    Py_ssize_t start, length;
    int advice;
    if (!PyArg_ParseTuple(args, "Onni", &obj, &start, &length, &advice)) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) return NULL;
    if (start < 0 || length < 0 || start > view.len || length > view.len - start) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "madvise: range outside the buffer");
        return NULL;
    }
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t first = ((uintptr_t)view.buf + (uintptr_t)start + page - 1) & ~(page - 1);
    uintptr_t end = (uintptr_t)view.buf + (uintptr_t)start + (uintptr_t)length;
    int rc = 0, err = 0;
    if (end > first) {
        Py_BEGIN_ALLOW_THREADS
        rc = madvise((void *)first, (size_t)(end - first), advice);
        err = errno;
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&view);
    if (rc != 0) {
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}
#endif

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
        int bad = 0;
        /* Readers in other threads keep going while tens of megabytes are copied. */
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < segs; i++) {
            Buf *src = fs[i] ? &nw : &old;
            Py_ssize_t len = (Py_ssize_t)(bs[i] - as[i]);
            if (len <= 0) continue;
            Py_ssize_t have = src->held ? src->view.len / item : 0;
            if (as[i] < 0 || bs[i] > have || written + len > cap) {
                bad = 1;
                break;
            }
            memcpy(dst + written * item, (const char *)src->view.buf + as[i] * item, (size_t)(len * item));
            written += len;
        }
        Py_END_ALLOW_THREADS
        if (bad) {
            PyErr_SetString(PyExc_ValueError, "splice: segment out of range");
            goto done;
        }
    }
done:
    buf_close(&old); buf_close(&nw); buf_close(&a); buf_close(&b); buf_close(&f); buf_close(&out);
    if (PyErr_Occurred()) return NULL;
    return PyLong_FromSsize_t(written);
}


/* --- string compression: a static symbol table (after FSST) -----------------------------------
 * Up to 255 symbols of 1..8 bytes; code 255 escapes one literal byte. Each string is compressed on
 * its own, so any one can be decoded alone. symbols: 255 uint64 (little-endian bytes, zero padded),
 * lengths: 255 uint8 (0 = unused code).
 */

#define ESC 255
#define HSIZE 2048

typedef struct {
    uint64_t key[HSIZE];  /* symbol bytes | length << 56 ... stored separately below */
    uint8_t len[HSIZE];
    uint8_t code[HSIZE];
    int16_t single[256];
    uint8_t has2[65536 / 8];
} Encoder;

static inline uint64_t load_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    memcpy(&v, p, (size_t)n);
    return v;
}

static inline uint32_t hkey(uint64_t v, int n) {
    uint64_t h = (v ^ ((uint64_t)n << 59)) * GOLD;
    return (uint32_t)(h >> 53) & (HSIZE - 1);
}

static int encoder_init(Encoder *e, const uint64_t *syms, const uint8_t *lens) {
    memset(e, 0, sizeof(*e));
    for (int i = 0; i < 256; i++) e->single[i] = -1;
    for (int c = 0; c < 255; c++) {
        int n = lens[c];
        if (n == 0) continue;
        if (n > 8) return -1;
        uint64_t v = syms[c] & (n == 8 ? ~0ULL : ((1ULL << (8 * n)) - 1));
        if (n == 1) { if (e->single[v & 255] < 0) e->single[v & 255] = (int16_t)c; continue; }
        uint32_t h = hkey(v, n);
        while (e->len[h]) {
            if (e->len[h] == n && e->key[h] == v) break;
            h = (h + 1) & (HSIZE - 1);
        }
        if (!e->len[h]) { e->len[h] = (uint8_t)n; e->key[h] = v; e->code[h] = (uint8_t)c; }
        e->has2[(v & 0xFFFF) >> 3] |= (uint8_t)(1 << (v & 7));
    }
    return 0;
}

static inline int encoder_find(const Encoder *e, uint64_t v, int n) {
    uint32_t h = hkey(v, n);
    while (e->len[h]) {
        if (e->len[h] == n && e->key[h] == v) return e->code[h];
        h = (h + 1) & (HSIZE - 1);
    }
    return -1;
}

/* Encode data[start:end] greedily (longest symbol first). Writes codes to out (or tokens: code, or
 * 256 + byte for an escaped literal). Returns the count written. */
static Py_ssize_t encode_one(const Encoder *e, const uint8_t *p, Py_ssize_t len, uint8_t *out, uint16_t *tokens) {
    Py_ssize_t i = 0, w = 0;
    while (i < len) {
        int best = -1, blen = 1;
        Py_ssize_t rest = len - i;
        if (rest >= 2) {
            uint32_t two = (uint32_t)p[i] | ((uint32_t)p[i + 1] << 8);
            if (e->has2[two >> 3] & (1 << (two & 7))) {
                int top = rest < 8 ? (int)rest : 8;
                uint64_t v = load_le(p + i, top);
                for (int n = top; n >= 2; n--) {
                    uint64_t m = n == 8 ? v : (v & ((1ULL << (8 * n)) - 1));
                    int c = encoder_find(e, m, n);
                    if (c >= 0) { best = c; blen = n; break; }
                }
            }
        }
        if (best < 0) best = e->single[p[i]];
        if (best >= 0) {
            if (tokens) tokens[w++] = (uint16_t)best; else out[w++] = (uint8_t)best;
            i += blen;
        } else {
            if (tokens) tokens[w++] = (uint16_t)(256 + p[i]);
            else { out[w++] = ESC; out[w++] = p[i]; }
            i += 1;
        }
    }
    return w;
}

/* fsst_encode(symbols, lengths, data, ends, tokens=False) -> (bytes, int64 ends)
 * With tokens=True: (uint16 tokens as bytes, int64 ends in tokens), for training. */
static PyObject *py_fsst_encode(PyObject *self, PyObject *args) {
    PyObject *so, *lo, *dobj, *eobj;
    int want_tokens = 0;
    if (!PyArg_ParseTuple(args, "OOOO|p", &so, &lo, &dobj, &eobj, &want_tokens)) return NULL;
    Buf sb = {0}, lb = {0}, db = {0}, eb = {0};
    PyObject *result = NULL, *outb = NULL, *ends = NULL;
    Encoder *enc = NULL;
    if (buf_open(so, &sb) < 0 || buf_open(lo, &lb) < 0 || buf_open(dobj, &db) < 0 || buf_open(eobj, &eb) < 0) goto done;
    if (sb.view.len < 255 * 8 || lb.view.len < 255) { PyErr_SetString(PyExc_ValueError, "bad symbol table"); goto done; }
    enc = PyMem_Malloc(sizeof(Encoder));
    if (enc == NULL) { PyErr_NoMemory(); goto done; }
    if (encoder_init(enc, (const uint64_t *)sb.view.buf, (const uint8_t *)lb.view.buf) < 0) {
        PyErr_SetString(PyExc_ValueError, "symbol longer than 8 bytes");
        goto done;
    }
    {
        Py_ssize_t n = eb.view.len / 8;
        const int64_t *e = (const int64_t *)eb.view.buf;
        const uint8_t *d = (const uint8_t *)db.view.buf;
        Py_ssize_t total = n ? e[n - 1] : 0;
        if (total > db.view.len) { PyErr_SetString(PyExc_ValueError, "ends past data"); goto done; }
        Py_ssize_t cap = want_tokens ? total * 2 : total * 2;
        outb = PyBytes_FromStringAndSize(NULL, cap > 0 ? cap : 1);
        ends = PyBytes_FromStringAndSize(NULL, n * 8 > 0 ? n * 8 : 1);
        if (outb == NULL || ends == NULL) goto done;
        uint8_t *o = (uint8_t *)PyBytes_AS_STRING(outb);
        int64_t *oe = (int64_t *)PyBytes_AS_STRING(ends);
        Py_ssize_t w = 0, start = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_ssize_t end = e[i];
            if (end < start) { PyErr_SetString(PyExc_ValueError, "ends must not decrease"); goto done; }
            if (want_tokens) w += encode_one(enc, d + start, end - start, NULL, (uint16_t *)o + w);
            else w += encode_one(enc, d + start, end - start, o + w, NULL);
            oe[i] = w;
            start = end;
        }
        if (_PyBytes_Resize(&outb, (want_tokens ? w * 2 : w) > 0 ? (want_tokens ? w * 2 : w) : 1) < 0) goto done;
        if (w == 0 && _PyBytes_Resize(&outb, 0) < 0) goto done;
        result = Py_BuildValue("(OO)", outb, ends);
    }
done:
    PyMem_Free(enc);
    Py_XDECREF(outb);
    Py_XDECREF(ends);
    buf_close(&sb); buf_close(&lb); buf_close(&db); buf_close(&eb);
    return result;
}

/* Decode one compressed string into dst (capacity 8 * len + 8). Returns bytes written or -1. */
static Py_ssize_t decode_one(const uint64_t *syms, const uint8_t *lens, const uint8_t *p, Py_ssize_t len, uint8_t *dst) {
    Py_ssize_t w = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        if (c == ESC) {
            if (++i >= len) return -1;
            dst[w++] = p[i];
        } else {
            memcpy(dst + w, &syms[c], 8);
            if (lens[c] == 0) return -1;
            w += lens[c];
        }
    }
    return w;
}

static PyObject *decoded_text(const uint64_t *syms, const uint8_t *lens, const uint8_t *p, Py_ssize_t len, int is_bytes) {
    uint8_t stack[512];
    uint8_t *dst = stack;
    if (len * 8 + 8 > (Py_ssize_t)sizeof(stack)) {
        dst = PyMem_Malloc((size_t)(len * 8 + 8));
        if (dst == NULL) return PyErr_NoMemory();
    }
    Py_ssize_t w = decode_one(syms, lens, p, len, dst);
    PyObject *r;
    if (w < 0) { PyErr_SetString(PyExc_ValueError, "corrupt compressed string"); r = NULL; }
    else if (is_bytes) r = PyBytes_FromStringAndSize((const char *)dst, w);
    else r = PyUnicode_DecodeUTF8((const char *)dst, w, "strict");
    if (dst != stack) PyMem_Free(dst);
    return r;
}

/* fsst_decode(symbols, lengths, data) -> bytes: one compressed string (or a run of them). */
static PyObject *py_fsst_decode(PyObject *self, PyObject *args) {
    PyObject *so, *lo, *dobj;
    if (!PyArg_ParseTuple(args, "OOO", &so, &lo, &dobj)) return NULL;
    Buf sb = {0}, lb = {0}, db = {0};
    PyObject *r = NULL;
    if (buf_open(so, &sb) < 0 || buf_open(lo, &lb) < 0 || buf_open(dobj, &db) < 0) goto done;
    if (sb.view.len < 255 * 8 || lb.view.len < 255) { PyErr_SetString(PyExc_ValueError, "bad symbol table"); goto done; }
    r = decoded_text((const uint64_t *)sb.view.buf, (const uint8_t *)lb.view.buf, (const uint8_t *)db.view.buf,
                     db.held ? db.view.len : 0, 1);
done:
    buf_close(&sb); buf_close(&lb); buf_close(&db);
    return r;
}

static PyMethodDef module_methods[] = {
    {"unpack", py_unpack, METH_VARARGS, "unpack(words, bits, n, out, stride=bits, offset=0)"},
    {"pack", py_pack, METH_VARARGS, "pack(codes, bits, out, stride=bits, offset=0): OR codes into zeroed words"},
    {"splice", py_splice, METH_VARARGS, "splice(old, new, starts, ends, from_new, out, itemsize) -> count"},
    {"shift", py_shift, METH_VARARGS, "shift(words, bits, stride, offset, starts, stops, amounts): add in place"},
    {"crc32", py_crc32, METH_VARARGS, "crc32(buffer, end, chunk=0, advice=-1, pause_us=0): zlib's CRC-32, no GIL"},
#ifdef HAVE_MADVISE
    {"madvise", py_madvise, METH_VARARGS, "madvise(buffer, start, length, advice), the GIL released"},
#endif
    {"put", py_put, METH_VARARGS, "put(words, codes, bits, stride, offset, index=None): overwrite codes"},
    {"fsst_encode", py_fsst_encode, METH_VARARGS, "fsst_encode(symbols, lengths, data, ends, tokens=False)"},
    {"fsst_decode", py_fsst_decode, METH_VARARGS, "fsst_decode(symbols, lengths, data) -> bytes"},
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
    crc_init();
#ifdef HAVE_CLMUL_CRC
    __builtin_cpu_init();
    clmul_usable = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
#endif
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
