import { unsafeTensor, type FloatTensor, type IntTensor, type MaskTensor } from '@rlhf/tensor';

type RowTensor = FloatTensor | IntTensor | MaskTensor;

/** Rows `rows` (indices along the first axis) of a tensor, copied into a new tensor of the same dtype. */
export const takeRows = <T extends RowTensor>(t: T, rows: ArrayLike<number>): T => {
  const width = t.shape[0] === 0 ? 0 : t.data.length / t.shape[0]!;
  const out = new (t.data.constructor as new (n: number) => T['data'])(rows.length * width);
  for (let k = 0; k < rows.length; k++) out.set(t.data.subarray(rows[k]! * width, (rows[k]! + 1) * width) as never, k * width);
  return unsafeTensor(t.dtype, [rows.length, ...t.shape.slice(1)], out as never) as T;
};
