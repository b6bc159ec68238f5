console.log('rewind');
