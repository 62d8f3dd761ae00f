/* src/core/tensor.c -- shapes and counts of moka_tensor. */
#include "moka/tensor.h"

#include <stdio.h>

int64_t moka_tensor_count(const moka_tensor *t) { return moka_tensor_count_range(t, 0, t->ndim); }

int64_t moka_tensor_count_range(const moka_tensor *t, int start, int end)
{
    if (start < 0) start += t->ndim;
    if (end > t->ndim) end = t->ndim;
    int64_t n = 1;
    for (int i = start < 0 ? 0 : start; i < end; i++) n *= t->shape[i];
    return n;
}

moka_status moka_tensor_axis(const moka_tensor *t, int axis, int *out, moka_err *err)
{
    if (axis < -t->ndim || axis >= t->ndim)
        return moka_errf(err, MOKA_ERR_SHAPE, "axis %d out of range for a %d-D blob", axis,
                         t->ndim);
    *out = axis < 0 ? axis + t->ndim : axis;
    return MOKA_OK;
}

moka_status moka_tensor_set_shape(moka_tensor *t, int ndim, const int64_t *shape, moka_err *err)
{
    if (ndim < 0 || ndim > MOKA_MAX_NDIM)
        return moka_errf(err, MOKA_ERR_SHAPE, "%d dims (at most %d supported)", ndim,
                         MOKA_MAX_NDIM);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return moka_errf(err, MOKA_ERR_SHAPE, "negative dimension %lld at axis %d",
                             (long long)shape[i], i);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    return MOKA_OK;
}

moka_status moka_tensor_set_shape_like(moka_tensor *t, const moka_tensor *like, moka_err *err)
{
    return moka_tensor_set_shape(t, like->ndim, like->shape, err);
}

char *moka_tensor_shape_str(const moka_tensor *t, char *buf, int nbytes)
{
    int n = 0;
    buf[0] = '\0';
    for (int i = 0; i < t->ndim && n < nbytes; i++)
        n += snprintf(buf + n, (size_t)(nbytes - n), "%lld ", (long long)t->shape[i]);
    if (n < nbytes)
        snprintf(buf + n, (size_t)(nbytes - n), "(%lld)", (long long)moka_tensor_count(t));
    return buf;
}
