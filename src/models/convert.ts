/**
 * @file tfjs → ONNX converter in plain JS (no TensorFlow runtime): Keras layers models (nsfwjs `mobilenet_v2`,
 * `inception_v3`) and tfjs graph models (nsfwjs `mobilenet_v2_mid`, a TF-Hub MobileNetV2 α=1.4).
 *
 * The ONNX graph is NCHW throughout (input `input` [N,3,S,S], values in [0,1] as nsfwjs feeds them); kernels are
 * transposed from TF's HWIO/HWCM layouts. Every intermediate tensor is named after its Keras layer (layers
 * models) or its TF node name without the long `StatefulPartitionedCall/.../predict/` scope (graph models), so
 * users can ask for `block_6_expand_relu` or `MobilenetV2/expanded_conv_5/add` as feature layers.
 * Opset 13. The output is byte-deterministic, so its SHA-256 can be pinned (see models/index.ts).
 * @module models/convert
 */
import onnxProto from 'onnx-proto';
import { KernelError } from '../errors.js';
import type { TfjsModel } from './tfjs.js';

const { onnx } = onnxProto;

/** Bumped whenever the emitted graph changes (it is part of the cache file name). */
export const CONVERTER_VERSION = 1;

const FLOAT = 1;
const INT64 = 7;
const AT = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 } as const;

type Attr = { name: string; type: number; f?: number; i?: number; s?: Uint8Array; ints?: number[] };
type Node = { name: string; opType: string; input: string[]; output: string[]; attribute: Attr[] };
type Tensor = { name: string; dims: number[]; dataType: number; rawData: Uint8Array };

const ints = (name: string, v: number[]): Attr => ({ name, type: AT.INTS, ints: v });
const int = (name: string, v: number): Attr => ({ name, type: AT.INT, i: v });
const flt = (name: string, v: number): Attr => ({ name, type: AT.FLOAT, f: v });
const str = (name: string, v: string): Attr => ({ name, type: AT.STRING, s: new TextEncoder().encode(v) });

/** Accumulates nodes and initializers. */
class GraphBuilder {
  nodes: Node[] = [];
  inits: Tensor[] = [];
  private names = new Set<string>();
  private counter = 0;

  unique(base: string): string {
    let n = base;
    while (this.names.has(n)) n = `${base}_${++this.counter}`;
    this.names.add(n);
    return n;
  }
  node(opType: string, input: string[], output: string, attribute: Attr[] = []): string {
    this.nodes.push({ name: this.unique(`${output}:${opType}`), opType, input, output: [output], attribute });
    return output;
  }
  f32(name: string, dims: number[], data: Float32Array): string {
    const n = this.unique(name);
    const le = new Float32Array(data); // copy: own buffer, little-endian on every platform Node runs on
    this.inits.push({ name: n, dims, dataType: FLOAT, rawData: new Uint8Array(le.buffer) });
    return n;
  }
  i64(name: string, data: number[]): string {
    const n = this.unique(name);
    const b = new BigInt64Array(data.map((v) => BigInt(v)));
    this.inits.push({ name: n, dims: [data.length], dataType: INT64, rawData: new Uint8Array(b.buffer) });
    return n;
  }
}

/** HWIO (TF conv kernel) → OIHW. */
function convKernel(w: Float32Array, [kh, kw, ci, co]: number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let y = 0; y < kh!; y++) for (let x = 0; x < kw!; x++) for (let i = 0; i < ci!; i++) for (let o = 0; o < co!; o++) {
    out[((o * ci! + i) * kh! + y) * kw! + x] = w[((y * kw! + x) * ci! + i) * co! + o]!;
  }
  return out;
}

/** HWCM (TF depthwise kernel) → (C·M)×1×H×W, output channel c·M + m as in TF. */
function depthwiseKernel(w: Float32Array, [kh, kw, c, m]: number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let y = 0; y < kh!; y++) for (let x = 0; x < kw!; x++) for (let i = 0; i < c!; i++) for (let j = 0; j < m!; j++) {
    out[((i * m! + j) * kh! + y) * kw! + x] = w[((y * kw! + x) * c! + i) * m! + j]!;
  }
  return out;
}

function padAttrs(padding: string, k: number[]): Attr[] {
  const p = padding.toLowerCase();
  if (p === 'same') return [str('auto_pad', 'SAME_UPPER')];
  if (p === 'valid') return [ints('pads', k.map(() => 0).concat(k.map(() => 0)))];
  throw new KernelError('ERR_MODEL', `unsupported padding ${padding}`);
}

/** Emits an activation; returns the name of its output (`out`). */
function activation(g: GraphBuilder, act: string | undefined, input: string, out: string): string {
  switch (act ?? 'linear') {
    case 'linear': return g.node('Identity', [input], out);
    case 'relu': return g.node('Relu', [input], out);
    case 'relu6': return g.node('Clip', [input, g.f32(`${out}/min`, [], new Float32Array([0])), g.f32(`${out}/max`, [], new Float32Array([6]))], out);
    case 'softmax': return g.node('Softmax', [input], out, [int('axis', -1)]);
    case 'sigmoid': return g.node('Sigmoid', [input], out);
    case 'tanh': return g.node('Tanh', [input], out);
    default: throw new KernelError('ERR_MODEL', `unsupported activation ${act}`);
  }
}

function need(m: TfjsModel, name: string): { shape: number[]; data: Float32Array } {
  const w = m.weights.get(name);
  if (!w) throw new KernelError('ERR_MODEL', `model ${m.id}: weight ${name} missing from the manifest`);
  return w;
}

/** Result of a conversion. */
export interface Converted {
  /** Serialised ONNX ModelProto. */
  bytes: Uint8Array;
  /** Input side (square). */
  inputSize: number;
  /** Name of the final output tensor. */
  output: string;
}

/**
 * Converts a loaded tfjs model to ONNX.
 * @param m the tfjs model (see models/tfjs.ts)
 * @returns the serialised ONNX model
 * @throws {KernelError} `ERR_MODEL` for a layer/op this converter does not know
 */
export function convertTfjsToOnnx(m: TfjsModel): Converted {
  const g = new GraphBuilder();
  let inputSize: number;
  let output: string;
  if (m.json.format === 'graph-model') ({ inputSize, output } = convertGraph(m, g));
  else ({ inputSize, output } = convertLayers(m, g));

  const dimsNchw = [{ dimParam: 'N' }, { dimValue: 3 }, { dimValue: inputSize }, { dimValue: inputSize }];
  const model = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'anomaly-clustering',
    producerVersion: `tfjs2onnx-${CONVERTER_VERSION}`,
    docString: `nsfwjs ${m.id} converted from tfjs; input NCHW RGB in [0,1]`,
    graph: {
      name: m.id,
      node: g.nodes,
      initializer: g.inits,
      input: [{ name: 'input', type: { tensorType: { elemType: FLOAT, shape: { dim: dimsNchw } } } }],
      output: [{ name: output, type: { tensorType: { elemType: FLOAT } } }],
    },
  } as never);
  return { bytes: onnx.ModelProto.encode(model).finish(), inputSize, output };
}

// ---------------------------------------------------------------------------------------------------------------
// Keras layers models

function convertLayers(m: TfjsModel, g: GraphBuilder): { inputSize: number; output: string } {
  const cfg = m.json.modelTopology?.model_config?.config;
  if (!cfg?.layers) throw new KernelError('ERR_MODEL', `model ${m.id}: no Keras model_config.layers`);
  const alias = new Map<string, string>();
  const t = (layer: string): string => alias.get(layer) ?? layer;
  let inputSize = 0;
  for (const layer of cfg.layers as { name: string; class_name: string; config: any; inbound_nodes: any[] }[]) {
    const c = layer.config;
    const name = layer.name;
    const ins: string[] = (layer.inbound_nodes[0] ?? []).map((x: [string]) => t(x[0]));
    const x = ins[0]!;
    const w = (p: string) => need(m, `${name}/${p}`);
    switch (layer.class_name) {
      case 'InputLayer': {
        inputSize = c.batch_input_shape[1];
        alias.set(name, 'input');
        g.unique('input');
        break;
      }
      case 'ZeroPadding2D': {
        const [[t0, b0], [l0, r0]] = c.padding as number[][];
        g.node('Pad', [x, g.i64(`${name}/pads`, [0, 0, t0!, l0!, 0, 0, b0!, r0!])], name, [str('mode', 'constant')]);
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        const depthwise = layer.class_name === 'DepthwiseConv2D';
        const k = w(depthwise ? 'depthwise_kernel' : 'kernel');
        const [kh, kw, ci, co] = k.shape as [number, number, number, number];
        const W = depthwise ? depthwiseKernel(k.data, k.shape) : convKernel(k.data, k.shape);
        const oc = depthwise ? ci * co : co;
        const inputs = [x, g.f32(`${name}/W`, [oc, depthwise ? 1 : ci, kh, kw], W)];
        if (c.use_bias) inputs.push(g.f32(`${name}/B`, [oc], w('bias').data));
        const attrs = [ints('kernel_shape', [kh, kw]), ints('strides', c.strides), ints('dilations', c.dilation_rate ?? [1, 1]),
          ...padAttrs(c.padding, [kh, kw])];
        if (depthwise) attrs.push(int('group', ci));
        const act = c.activation ?? 'linear';
        const convOut = act === 'linear' ? name : `${name}/conv`;
        g.node('Conv', inputs, convOut, attrs);
        if (act !== 'linear') activation(g, act, convOut, name);
        break;
      }
      case 'BatchNormalization': {
        const axis = c.axis === -1 || c.axis === 3 || (Array.isArray(c.axis) && (c.axis[0] === 3 || c.axis[0] === -1));
        if (!axis) throw new KernelError('ERR_MODEL', `${name}: BatchNormalization over axis ${JSON.stringify(c.axis)} unsupported`);
        const mean = w('moving_mean');
        const ch = mean.shape[0]!;
        const gamma = c.scale === false ? new Float32Array(ch).fill(1) : w('gamma').data;
        const beta = c.center === false ? new Float32Array(ch) : w('beta').data;
        g.node('BatchNormalization', [x, g.f32(`${name}/scale`, [ch], gamma), g.f32(`${name}/B`, [ch], beta),
          g.f32(`${name}/mean`, [ch], mean.data), g.f32(`${name}/var`, [ch], w('moving_variance').data)], name,
        [flt('epsilon', c.epsilon ?? 1e-3)]);
        break;
      }
      case 'ReLU': {
        if ((c.negative_slope ?? 0) !== 0 || (c.threshold ?? 0) !== 0) throw new KernelError('ERR_MODEL', `${name}: leaky/thresholded ReLU unsupported`);
        if (c.max_value == null) g.node('Relu', [x], name);
        else g.node('Clip', [x, g.f32(`${name}/min`, [], new Float32Array([0])), g.f32(`${name}/max`, [], new Float32Array([c.max_value]))], name);
        break;
      }
      case 'Activation':
        activation(g, c.activation, x, name);
        break;
      case 'Add':
        g.node(ins.length === 2 ? 'Add' : 'Sum', ins, name);
        break;
      case 'Concatenate': {
        if (!(c.axis === -1 || c.axis === 3)) throw new KernelError('ERR_MODEL', `${name}: Concatenate axis ${c.axis} unsupported`);
        g.node('Concat', ins, name, [int('axis', 1)]);
        break;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        const k = c.pool_size as number[];
        const attrs = [ints('kernel_shape', k), ints('strides', c.strides ?? k), ...padAttrs(c.padding, k)];
        // Keras 'same' average pooling ignores the padded cells: ONNX count_include_pad=0 (the default).
        g.node(layer.class_name === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool', [x], name, attrs);
        break;
      }
      case 'GlobalAveragePooling2D':
        g.node('Flatten', [g.node('GlobalAveragePool', [x], `${name}/gap`)], name, [int('axis', 1)]);
        break;
      case 'Flatten': // Keras flattens NHWC: transpose back before flattening so a Dense after it sees the same order
        g.node('Flatten', [g.node('Transpose', [x], `${name}/nhwc`, [ints('perm', [0, 2, 3, 1])])], name, [int('axis', 1)]);
        break;
      case 'Dense': {
        const k = w('kernel');
        const inputs = [x, g.f32(`${name}/W`, k.shape, k.data)];
        if (c.use_bias) inputs.push(g.f32(`${name}/B`, [k.shape[1]!], w('bias').data));
        const act = c.activation ?? 'linear';
        const out = act === 'linear' ? name : `${name}/gemm`;
        g.node('Gemm', inputs, out);
        if (act !== 'linear') activation(g, act, out, name);
        break;
      }
      case 'Dropout':
      case 'SpatialDropout2D':
        alias.set(name, x);
        break;
      default:
        throw new KernelError('ERR_MODEL', `model ${m.id}: Keras layer ${layer.class_name} (${name}) is not supported by the converter`);
    }
  }
  const outLayer = cfg.output_layers?.[0]?.[0] as string;
  return { inputSize, output: t(outLayer) };
}

// ---------------------------------------------------------------------------------------------------------------
// tfjs graph models (TF GraphDef as JSON)

const decodeS = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');
const listI = (a: any): number[] => (a?.list?.i ?? []).map(Number);
/** NHWC axis → NCHW axis. */
const nhwcAxis = (a: number) => [0, 2, 3, 1][a < 0 ? a + 4 : a]!;

/** Shortens TF scope names: everything up to `…/predict/` goes. */
export function shortTfName(name: string): string {
  const k = name.lastIndexOf('/predict/');
  return k >= 0 ? name.slice(k + '/predict/'.length) : name;
}

function convertGraph(m: TfjsModel, g: GraphBuilder): { inputSize: number; output: string } {
  const nodes = m.json.modelTopology?.node as { name: string; op: string; input?: string[]; attr?: any }[];
  if (!nodes) throw new KernelError('ERR_MODEL', `model ${m.id}: no graph nodes`);
  const consts = new Set<string>();
  const tn = (n: string): string => (n.startsWith('^') ? '' : shortTfName(n.replace(/:0$/, '')));
  let inputSize = 0;
  let last = '';
  for (const n of nodes) {
    const a = n.attr ?? {};
    const name = tn(n.name);
    const ins = (n.input ?? []).filter((i) => !i.startsWith('^'));
    const tensorIn = (i: number): string => {
      const raw = ins[i]!;
      const short = tn(raw);
      if (consts.has(short)) {
        const w = need(m, raw.replace(/:0$/, ''));
        return g.f32(short, w.shape, w.data); // a fresh initializer per use (all are single-use in these graphs)
      }
      return short;
    };
    const constOf = (i: number) => need(m, ins[i]!.replace(/:0$/, ''));
    switch (n.op) {
      case 'Const':
        consts.add(name);
        continue;
      case 'Placeholder': {
        const dims = a.shape?.shape?.dim?.map((d: { size: string }) => Number(d.size)) ?? [];
        inputSize = dims[1] ?? 224;
        g.unique('input');
        if (name !== 'input') g.node('Identity', ['input'], name);
        break;
      }
      case 'Mul': case 'Sub': case 'AddV2': case 'Add': {
        const op = n.op === 'AddV2' ? 'Add' : n.op;
        g.node(op, [tensorIn(0), tensorIn(1)], name);
        break;
      }
      case '_FusedConv2D': case 'FusedDepthwiseConv2dNative': case 'Conv2D': case 'DepthwiseConv2dNative': {
        const df = a.data_format ? decodeS(a.data_format.s) : 'NHWC';
        if (df !== 'NHWC') throw new KernelError('ERR_MODEL', `${name}: data_format ${df} unsupported`);
        const depthwise = n.op.includes('Depthwise');
        const k = constOf(1);
        const [kh, kw, ci, co] = k.shape as [number, number, number, number];
        const W = depthwise ? depthwiseKernel(k.data, k.shape) : convKernel(k.data, k.shape);
        const oc = depthwise ? ci * co : co;
        const fused = (a.fused_ops?.list?.s ?? []).map(decodeS) as string[];
        const inputs = [tensorIn(0), g.f32(`${name}/W`, [oc, depthwise ? 1 : ci, kh, kw], W)];
        if (fused.includes('BiasAdd')) inputs.push(g.f32(`${name}/B`, [oc], constOf(2).data));
        else if (fused.some((f) => f !== 'Relu' && f !== 'Relu6')) throw new KernelError('ERR_MODEL', `${name}: fused ops ${fused.join(',')} unsupported`);
        const s = listI(a.strides);
        const d = listI(a.dilations);
        const attrs = [ints('kernel_shape', [kh, kw]), ints('strides', [s[1] ?? 1, s[2] ?? 1]),
          ints('dilations', [d[1] ?? 1, d[2] ?? 1]), ...padAttrs(decodeS(a.padding.s), [kh, kw])];
        if (depthwise) attrs.push(int('group', ci));
        const act = fused.includes('Relu6') ? 'relu6' : fused.includes('Relu') ? 'relu' : 'linear';
        const convOut = act === 'linear' ? name : `${name}/conv`;
        g.node('Conv', inputs, convOut, attrs);
        if (act !== 'linear') activation(g, act, convOut, name);
        break;
      }
      case 'Relu': g.node('Relu', [tensorIn(0)], name); break;
      case 'Relu6': activation(g, 'relu6', tensorIn(0), name); break;
      case 'AvgPool': case 'MaxPool': {
        const k = listI(a.ksize);
        const s = listI(a.strides);
        g.node(n.op === 'AvgPool' ? 'AveragePool' : 'MaxPool', [tensorIn(0)], name,
          [ints('kernel_shape', [k[1]!, k[2]!]), ints('strides', [s[1]!, s[2]!]), ...padAttrs(decodeS(a.padding.s), [k[1]!, k[2]!])]);
        break;
      }
      case 'Squeeze': {
        const axes = listI(a.squeeze_dims).map(nhwcAxis);
        g.node('Squeeze', [tensorIn(0), g.i64(`${name}/axes`, axes)], name);
        break;
      }
      case '_FusedMatMul': case 'MatMul': {
        if (a.transpose_a?.b || a.transpose_b?.b) throw new KernelError('ERR_MODEL', `${name}: transposed MatMul unsupported`);
        const k = constOf(1);
        const inputs = [tensorIn(0), g.f32(`${name}/W`, k.shape, k.data)];
        const fused = (a.fused_ops?.list?.s ?? []).map(decodeS) as string[];
        if (fused.includes('BiasAdd')) inputs.push(g.f32(`${name}/B`, [k.shape[1]!], constOf(2).data));
        const act = fused.includes('Relu') ? 'relu' : 'linear';
        const out = act === 'linear' ? name : `${name}/gemm`;
        g.node('Gemm', inputs, out);
        if (act !== 'linear') activation(g, act, out, name);
        break;
      }
      case 'Softmax': g.node('Softmax', [tensorIn(0)], name, [int('axis', -1)]); break;
      case 'Identity': g.node('Identity', [tensorIn(0)], name); break;
      default:
        throw new KernelError('ERR_MODEL', `model ${m.id}: TF op ${n.op} (${name}) is not supported by the converter`);
    }
    last = name;
  }
  return { inputSize, output: last };
}
