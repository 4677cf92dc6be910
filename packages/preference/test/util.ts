export { f32, f64, i32, kindOf, randomArray, right, rng } from '../../kernels/test/util.js';
