// A @grpc/grpc-js client for uploadbroker.v1 loaded from the .proto at run
// time (no generated code), with promise wrappers for the unary calls.
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const path = require('node:path');

const PROTO_ROOT = process.env.UB_PROTO_DIR || path.resolve(__dirname, '../../../proto');

function loadService() {
  const def = protoLoader.loadSync('uploadbroker/v1/upload_broker.proto', {
    includeDirs: [PROTO_ROOT], keepCase: true, longs: String, enums: String, defaults: true,
  });
  return grpc.loadPackageDefinition(def).uploadbroker.v1.UploadBroker;
}

function connect(target, apiKey) {
  const Service = loadService();
  const client = new Service(target, grpc.credentials.createInsecure());
  const md = () => {
    const m = new grpc.Metadata();
    if (apiKey) m.set('authorization', `Bearer ${apiKey}`);
    return m;
  };
  const unary = (name) => (req) => new Promise((resolve, reject) => {
    client[name](req, md(), { deadline: Date.now() + 10000 }, (err, resp) => (err ? reject(err) : resolve(resp)));
  });
  return {
    raw: client,
    metadata: md,
    CreatePostPolicy: unary('CreatePostPolicy'),
    CreatePresignedPut: unary('CreatePresignedPut'),
    GetUpload: unary('GetUpload'),
    ListUploads: unary('ListUploads'),
    CreateMultipartUpload: unary('CreateMultipartUpload'),
    SignUploadParts: unary('SignUploadParts'),
    ListUploadedParts: unary('ListUploadedParts'),
    CompleteMultipartUpload: unary('CompleteMultipartUpload'),
    AbortUpload: unary('AbortUpload'),
    close: () => client.close(),
  };
}

module.exports = { connect, grpc };
