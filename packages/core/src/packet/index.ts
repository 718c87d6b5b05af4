/**
 * The DNS packet codec: lazy zero-copy reading (`MessageReader`), full
 * decoding/encoding of plain objects (`decode`, `encode`, `encodingLength`),
 * UDP truncation, names, and the code tables.
 */
export { classFromString, classToString, RecordClass } from './classes.js';
export { decode } from './decode.js';
export type {
  ClientSubnetOption,
  CookieOption,
  Edns,
  EdnsInit,
  EdnsOption,
  ExtendedErrorOption,
  PaddingOption,
  RawOption,
  TcpKeepaliveOption,
} from './edns.js';
export { DEFAULT_UDP_PAYLOAD_SIZE } from './edns.js';
export { EdeCode, edeCodeFromString, edeCodeToString } from './edecodes.js';
export { encode, encodingLength, MAX_MESSAGE_SIZE } from './encode.js';
export { PacketError, type PacketErrorCode } from './errors.js';
export type {
  Message,
  MessageInit,
  Question,
  QuestionInit,
  RecordData,
  ResourceRecord,
  ResourceRecordInit,
} from './message.js';
export {
  canonicalName,
  copyNameLower,
  labelCount,
  lowercaseName,
  MAX_LABEL_LENGTH,
  MAX_NAME_LENGTH,
  namesEqual,
  nameToWire,
  readName,
  skipName,
  wireNamesEqual,
} from './name.js';
export { Opcode, opcodeFromString, opcodeToString } from './opcodes.js';
export { OptionCode, optionCodeFromString, optionCodeToString } from './optioncodes.js';
export { COMPRESSIBLE_TYPES, decodeRdata } from './rdata/index.js';
export { SvcParamKey } from './rdata/svcb.js';
export type {
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
  RawSvcParam,
  RpData,
  RrsigData,
  SoaData,
  SrvData,
  SshfpData,
  SvcbData,
  SvcParams,
  TlsaData,
} from './rdata/types.js';
export { Rcode, rcodeFromString, rcodeToString } from './rcodes.js';
export { MessageReader, RecordIterator, RecordView, type Section } from './reader.js';
export { truncateForUdp } from './truncate.js';
export { RecordType, typeFromString, typeToString } from './types.js';
