//! The fused Adam update on burn's Flex CPU backend: one pass over parameter, gradient and
//! moments, in place, split over rayon's pool; other dtypes take the composition.

use super::AdamOps;
use crate::adam::composed;
use crate::buffer::{contiguous, offsets};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::{DType, TensorMetadata};
use pulp::{Arch, Simd, WithSimd};
use rayon::prelude::*;

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

impl AdamOps for Flex {
    fn adam_update(
        p: FlexTensor,
        g: FlexTensor,
        m1: FlexTensor,
        m2: FlexTensor,
        step: [f32; 5],
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let fits = [&g, &m1, &m2]
            .iter()
            .all(|t| t.dtype() == DType::F32 && t.shape() == p.shape())
            && p.dtype() == DType::F32;
        if !fits {
            return composed::<Self>(p, g, m1, m2, step);
        }
        let (mut p, g, mut m1, mut m2) =
            (contiguous(p), contiguous(g), contiguous(m1), contiguous(m2));
        let ranges = [offsets(&p), offsets(&g), offsets(&m1), offsets(&m2)];
        let [(ps, pe), (gs, ge), (as_, ae), (vs, ve)] = ranges;
        // Copy-on-write: shared buffers are copied first, owned ones (the usual case: the
        // optimizer's state and the parameter it replaces) are updated in place.
        update(
            &mut p.storage_mut::<f32>()[ps..pe],
            &g.storage::<f32>()[gs..ge],
            &mut m1.storage_mut::<f32>()[as_..ae],
            &mut m2.storage_mut::<f32>()[vs..ve],
            step,
        );
        (p, m1, m2)
    }
}

/// The update over slices of one length, in chunks on rayon's pool.
fn update(p: &mut [f32], g: &[f32], m1: &mut [f32], m2: &mut [f32], step: [f32; 5]) {
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(m1.par_chunks_mut(CHUNK))
        .zip(m2.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m1), m2)| Arch::new().dispatch(Update(p, g, m1, m2, step)));
}

/// One chunk of the update, monomorphised per SIMD level so the loop vectorises with it.
struct Update<'a>(
    &'a mut [f32],
    &'a [f32],
    &'a mut [f32],
    &'a mut [f32],
    [f32; 5],
);

impl WithSimd for Update<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let Update(p, g, m1, m2, [beta_1, beta_2, factor, epsilon, lr]) = self;
        let (share_1, share_2) = (1.0 - beta_1, 1.0 - beta_2);
        for (((p, &g), m1), m2) in p.iter_mut().zip(g).zip(m1).zip(m2) {
            // burn's order of operations, so the result matches its Adam to the last bit.
            *m1 = *m1 * beta_1 + g * share_1;
            *m2 = *m2 * beta_2 + g * g * share_2;
            let update = (*m1 * factor) / (m2.sqrt() + epsilon);
            *p -= update * lr;
        }
    }
}
