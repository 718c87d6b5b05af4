/**
 * Plain-object message shapes used by `decode`/`encode`.
 */
import type { Buffer } from 'node:buffer';
import type { Edns, EdnsInit, EdnsOption } from './edns.js';
import type {
  AfsdbData,
  CaaData,
  DnskeyData,
  DsData,
  HinfoData,
  MinfoData,
  MxData,
  NaptrData,
  Nsec3Data,
  Nsec3ParamData,
  NsecData,
  RpData,
  RrsigData,
  SoaData,
  SrvData,
  SshfpData,
  SvcbData,
  TlsaData,
} from './rdata/types.js';

/**
 * RDATA of a record: a typed object per supported type (see `rdata/types.ts`):
 * A/AAAA → address string; NS/CNAME/DNAME/PTR → name string; TXT/SPF →
 * `Buffer[]` (strings accepted when encoding, as UTF-8); OPT → `EdnsOption[]`;
 * any type without a decoder → raw `Buffer` (RFC 3597).
 */
export type RecordData =
  | string
  | Buffer
  | Array<Buffer | string>
  | MxData
  | SoaData
  | SrvData
  | CaaData
  | NaptrData
  | DsData
  | DnskeyData
  | RrsigData
  | NsecData
  | Nsec3Data
  | Nsec3ParamData
  | TlsaData
  | SshfpData
  | HinfoData
  | MinfoData
  | RpData
  | AfsdbData
  | SvcbData
  | EdnsOption[];

/** A question as the encoder accepts it (`class` defaults to IN). */
export interface QuestionInit {
  name: string;
  type: number;
  class?: number;
}

/** A decoded question. */
export interface Question extends QuestionInit {
  class: number;
}

/** A record as the encoder accepts it (`class` defaults to IN, `ttl` to 0). */
export interface ResourceRecordInit<D = RecordData> {
  name: string;
  type: number;
  class?: number;
  ttl?: number;
  data: D;
}

/** A decoded record. */
export interface ResourceRecord<D = RecordData> extends ResourceRecordInit<D> {
  class: number;
  ttl: number;
}

/** Header fields shared by {@link Message} and {@link MessageInit}. */
interface HeaderFields {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  /** The reserved Z bit (must be 0; kept for round-trips). */
  z: boolean;
  ad: boolean;
  cd: boolean;
  /**
   * The full rcode: header bits extended by the OPT record (RFC 6891
   * §6.1.3), so `BADCOOKIE` is 23. Values above 15 need `edns`.
   */
  rcode: number;
}

/** A decoded message. EDNS is lifted out of `additionals` into `edns`. */
export interface Message extends HeaderFields {
  questions: Question[];
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
  edns?: Edns;
}

/** What `encode` accepts: every field optional (0 / false / empty). */
export interface MessageInit extends Partial<HeaderFields> {
  questions?: QuestionInit[];
  answers?: ResourceRecordInit[];
  authorities?: ResourceRecordInit[];
  additionals?: ResourceRecordInit[];
  edns?: EdnsInit;
}

export type { Edns, EdnsInit, EdnsOption };
